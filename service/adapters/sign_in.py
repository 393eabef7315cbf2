"""The rotator's own sign-in failing, said in two lines: which sign-in was tried, why each failed, the fix.

azure-identity explains a failed sign-in in a dozen lines (DefaultAzureCredential lists every credential it
tried, each with a troubleshooting link). :func:`sign_in_failed` reads that text, keeps a few words per
credential and adds the fix for the config's ``credential.type``. The words are azure-identity's own
sentences, matched loosely; what is not recognised is kept, clipped, rather than dropped.
"""

from __future__ import annotations

import re

from azure.core.exceptions import ClientAuthenticationError

from service.redact import clip

# DefaultAzureCredential's chain, by class name: how an operator calls each.
_LABELS = {
    "EnvironmentCredential": "environment variables",
    "WorkloadIdentityCredential": "workload identity",
    "ManagedIdentityCredential": "managed identity",
    "SharedTokenCacheCredential": "shared token cache",
    "VisualStudioCodeCredential": "VS Code",
    "AzureCliCredential": "Azure CLI",
    "AzurePowerShellCredential": "Azure PowerShell",
    "AzureDeveloperCliCredential": "Azure Developer CLI",
    "InteractiveBrowserCredential": "browser",
    "BrokerCredential": "broker",
}

# azure-identity's sentence (a pattern) -> the few words that say the same.
_REASONS = (
    (r"Environment variables are not fully configured", "not set"),
    (r"workload options are not fully configured|AZURE_FEDERATED_TOKEN_FILE", "not set up"),
    (r"no response from the IMDS endpoint|IMDS endpoint", "no endpoint answered"),
    (r"No identity has been assigned|identity has not been assigned", "none assigned to this machine"),
    (r"No accounts were found in the cache", "no account"),
    (r"requires the 'azure-identity-broker'|Visual Studio Code|VS Code", "not signed in"),
    (r"not found on path|not installed|could not be found", "not installed"),
    (r"az login|Connect-AzAccount|azd auth login|[Pp]lease run .*login", "not logged in"),
    (r"Unexpected content type|unexpected response", "the answer was no token"),
)

# Entra's answer to a sign-in, by AADSTS code: what is wrong with the rotator's own identity.
_AADSTS_HINTS = {
    "7000215": "the rotator's own client secret is wrong: put its current value where credential.client_secret points",
    "7000222": "the rotator's own client secret has expired: give its app a new one and put it where "
    "credential.client_secret points",
    "700016": "no app with credential.client_id in that tenant: check credential.client_id and credential.tenant_id",
    "90002": "no such tenant: check credential.tenant_id (or the target's tenant_id)",
    "700213": "Entra found no federated credential for this pod's token: the identity's federated credential "
    "needs the cluster's OIDC issuer and subject system:serviceaccount:NAMESPACE:SERVICEACCOUNT",
    "70021": "Entra found no federated credential for this pod's token: the identity's federated credential "
    "needs the cluster's OIDC issuer and subject system:serviceaccount:NAMESPACE:SERVICEACCOUNT",
    "700024": "the pod's token is expired or not yet valid: check the node's clock and the token file",
    "50034": "the user signed in with the Azure CLI does not exist in that tenant: `az login --tenant TENANT`",
}

_FIX_BY_TYPE = {
    "default": (
        "set credential.type to the sign-in this host has: workload_identity (a pod labelled "
        "azure.workload.identity/use=true), managed_identity (an Azure VM or App Service), or client_secret "
        "with a reference; for a run by hand, `az login`"
    ),
    "workload_identity": (
        "run it in a pod labelled azure.workload.identity/use=true whose ServiceAccount is annotated with the "
        "identity's client id, or set credential.client_id and credential.token_file"
    ),
    "managed_identity": (
        "assign a managed identity to this VM, App Service or node (credential.client_id picks a user-assigned "
        "one), or use another credential.type"
    ),
    "client_secret": "check credential.tenant_id, credential.client_id and the secret credential.client_secret names",
}

# What the adapters keep of a sign-in failure's message: DefaultAzureCredential's line names eight sign-ins.
SIGN_IN_CLIP = 500


class SignInFailed(ClientAuthenticationError):
    """The rotator's own sign-in failed; ``message`` says which sign-in and why in one line, ``hint`` the fix.

    A ClientAuthenticationError still, so that the SDKs' pipelines and the adapters' translations treat it as
    the failure it replaces.
    """

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message=message)
        self.hint = hint


def _aadsts(text: str) -> str | None:
    match = re.search(r"AADSTS(\d+)", text)
    return match.group(1) if match else None


def _reason(text: str) -> str:
    """A credential's failure in a few words."""
    code = _aadsts(text)
    if code:
        # The line with the code, without the trace and correlation ids Entra appends.
        line = next(line for line in text.splitlines() if f"AADSTS{code}" in line)
        line = re.sub(r"^.*?(AADSTS\d+)", r"\1", line).split(" Trace ID:")[0]
        sentence = re.match(r".*?\.(?=\s|$)", line)  # its first sentence: what Entra refused
        return f"refused: {clip(sentence.group(0) if sentence else line, 200)}"
    for pattern, words in _REASONS:
        if re.search(pattern, text):
            return words
    rest = re.sub(r"^\w+Credential(\.get_token(_info)?)? (failed|authentication unavailable)[.:]?\s*", "", text)
    return clip(rest.split("\n")[0], 80) or "failed"


def _chain(text: str) -> list[tuple[str, str]] | None:
    """DefaultAzureCredential's "Attempted credentials:" list as (credential, its failure); None if it has none."""
    if "Attempted credentials:" not in text:
        return None
    tried: list[tuple[str, str]] = []
    for line in text.split("Attempted credentials:", 1)[1].splitlines():
        match = re.match(r"\s+(\w+): (.*)", line)
        if match and match.group(1).endswith("Credential"):
            tried.append((match.group(1), match.group(2)))
        elif tried and line.strip() and not line.startswith("To mitigate"):
            tried[-1] = (tried[-1][0], tried[-1][1] + "\n" + line.strip())  # a sentence that went on
    return tried


def _hint(kind: str, refused: list[str]) -> str:
    codes = [code for code in map(_aadsts, refused) if code]
    known = [_AADSTS_HINTS[code] for code in codes if code in _AADSTS_HINTS]
    if known:
        return known[0]
    if codes:
        return (
            f"Entra refused the rotator's sign-in (AADSTS{codes[0]}): look the code up in the Entra sign-in "
            "logs of the rotator's identity; " + _FIX_BY_TYPE.get(kind, _FIX_BY_TYPE["default"])
        )
    return _FIX_BY_TYPE.get(kind, _FIX_BY_TYPE["default"])


def sign_in_failed(kind: str, error: BaseException) -> SignInFailed:
    """``error`` (azure-identity's, or reading a token file) as a :class:`SignInFailed` for ``credential.type``
    ``kind``: one line naming each sign-in tried with why it failed, and the fix."""
    if isinstance(error, OSError):
        # WorkloadIdentityCredential reads its token file at every token request and lets the error through.
        where = f" {error.filename}" if error.filename else ""
        return SignInFailed(
            f"the {kind.replace('_', ' ')} sign-in failed: its token file{where} cannot be read "
            f"({error.strerror or type(error).__name__})",
            _hint(kind, []),
        )
    text = str((error.message if isinstance(error, ClientAuthenticationError) else str(error)) or "")
    tried = _chain(text)
    if tried:
        said = ", ".join(f"{_LABELS.get(name, name)} ({_reason(why)})" for name, why in tried)
        refused = [why for _, why in tried if _aadsts(why)]
        return SignInFailed(f"DefaultAzureCredential tried {said}", _hint(kind, refused))
    label = {
        "workload_identity": "workload identity",
        "managed_identity": "managed identity",
        "client_secret": "client secret",
    }.get(kind, "DefaultAzureCredential")
    return SignInFailed(f"the {label} sign-in failed: {_reason(text)}", _hint(kind, [text]))
