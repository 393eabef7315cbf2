"""How a failed sign-in of the rotator is said: azure-identity's texts (as version 1.27 words them) in one
line per failure, and the fix for the config's credential.type."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError

from service.adapters.sign_in import sign_in_failed

NOTHING_SET_UP = (
    "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
    "Attempted credentials:\n"
    "\tEnvironmentCredential: EnvironmentCredential authentication unavailable. Environment variables are not fully "
    "configured.\nVisit https://aka.ms/azsdk/python/identity/environmentcredential/troubleshoot to troubleshoot this "
    "issue.\n"
    "\tWorkloadIdentityCredential: WorkloadIdentityCredential authentication unavailable. The workload options are "
    "not fully configured. See the troubleshooting guide for more information: "
    "https://aka.ms/azsdk/python/identity/workloadidentitycredential/troubleshoot. Missing required arguments: "
    "'tenant_id', 'client_id', 'token_file_path'.\n"
    "\tManagedIdentityCredential: ManagedIdentityCredential authentication unavailable, no response from the IMDS "
    "endpoint.\n"
    "\tSharedTokenCacheCredential: SharedTokenCacheCredential authentication unavailable. No accounts were found in "
    "the cache.\n"
    "\tVisualStudioCodeCredential: VisualStudioCodeCredential requires the 'azure-identity-broker' package to be "
    "installed. You must also ensure you have the Azure Resources extension installed and have signed in to Azure "
    "via Visual Studio Code.\n"
    "\tAzureCliCredential: {cli}\n"
    "\tAzurePowerShellCredential: PowerShell is not installed\n"
    "\tAzureDeveloperCliCredential: Azure Developer CLI could not be found. Please visit https://aka.ms/azure-dev "
    "for installation instructions and then,once installed, authenticate to your Azure account using 'azd auth "
    "login'.\n"
    "To mitigate this issue, please refer to the troubleshooting guidelines here at "
    "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot."
)

CASES = {
    "nothing is set up: every sign-in tried, each in a word or two": (
        "default",
        NOTHING_SET_UP.format(cli="Azure CLI not found on path"),
        "DefaultAzureCredential tried environment variables (not set), workload identity (not set up), managed "
        "identity (no endpoint answered), shared token cache (no account), VS Code (not signed in), Azure CLI (not "
        "installed), Azure PowerShell (not installed), Azure Developer CLI (not installed)",
        "set credential.type to the sign-in this host has",
    ),
    "the Azure CLI is there but nobody logged in": (
        "default",
        NOTHING_SET_UP.format(cli="Please run 'az login' to set up an account"),
        "Azure CLI (not logged in)",
        "set credential.type",
    ),
    "the Azure CLI's user is refused by the target's tenant: its code and the fix for it": (
        "default",
        NOTHING_SET_UP.format(
            cli="AADSTS50034: The user account person@contoso.com does not exist in the fabrikam.com directory. "
            "To sign into this application, the account must be added to the directory. Trace ID: 1"
        ),
        "Azure CLI (refused: AADSTS50034: The user account person@contoso.com does not exist in the fabrikam.com "
        "directory.)",
        "`az login --tenant TENANT`",
    ),
    "a managed identity endpoint that answers something else": (
        "managed_identity",
        'ManagedIdentityCredential authentication unavailable. Unexpected content type "text/plain"',
        "the managed identity sign-in failed: the answer was no token",
        "assign a managed identity",
    ),
    "a pod token without a federated credential in Entra": (
        "workload_identity",
        "ClientAssertionCredential.get_token failed: AADSTS700213: No matching federated identity record found for "
        "presented assertion subject 'system:serviceaccount:default:default'. Trace ID: x",
        "the workload identity sign-in failed: refused: AADSTS700213: No matching federated identity record found "
        "for presented assertion subject 'system:serviceaccount:default:default'.",
        "subject system:serviceaccount:NAMESPACE:SERVICEACCOUNT",
    ),
    "a sentence no rule knows is kept, clipped to one line": (
        "client_secret",
        "ClientSecretCredential.get_token failed: Something new\nand more",
        "the client secret sign-in failed: Something new",
        "check credential.tenant_id",
    ),
}


@pytest.mark.parametrize(("kind", "text", "said", "fix"), CASES.values(), ids=CASES.keys())
def test_a_failed_sign_in_is_one_line_and_a_fix(kind: str, text: str, said: str, fix: str) -> None:
    failed = sign_in_failed(kind, ClientAuthenticationError(message=text))

    assert said in failed.message
    assert "\n" not in failed.message
    assert "aka.ms" not in failed.message
    assert fix in failed.hint
    assert isinstance(failed, ClientAuthenticationError), "the SDKs' pipelines still see a sign-in failure"


def test_a_token_file_that_cannot_be_read_names_the_file() -> None:
    failed = sign_in_failed("workload_identity", FileNotFoundError(2, "No such file or directory", "/var/run/token"))

    assert failed.message == (
        "the workload identity sign-in failed: its token file /var/run/token cannot be read (No such file or directory)"
    )
    assert "azure.workload.identity/use=true" in failed.hint
