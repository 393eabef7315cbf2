"""The Azure cloud's endpoints, and who the rotator is when it calls Graph and Key Vault."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from service.config.fields import GUID, HttpsUrl, StrictModel
from service.config.references import SecretReference
from service.local_files import FileProblem, read_ca_bundle

CLOUDS: dict[str, dict[str, str]] = {
    "public": {
        "authority_host": "https://login.microsoftonline.com",
        "graph_url": "https://graph.microsoft.com/v1.0",
        "graph_scope": "https://graph.microsoft.com/.default",
    },
    "usgov": {
        "authority_host": "https://login.microsoftonline.us",
        "graph_url": "https://graph.microsoft.us/v1.0",
        "graph_scope": "https://graph.microsoft.us/.default",
    },
    "china": {
        "authority_host": "https://login.chinacloudapi.cn",
        "graph_url": "https://microsoftgraph.chinacloudapi.cn/v1.0",
        "graph_scope": "https://microsoftgraph.chinacloudapi.cn/.default",
    },
}


class Cloud(StrictModel):
    """The Azure cloud's endpoints; a named cloud fills in what is not given explicitly."""

    name: Literal["public", "usgov", "china"] = Field(
        default="public",
        description="A known Azure cloud: `public`, `usgov` (Azure Government) or `china` (operated by 21Vianet). "
        "It fills in whichever of authority_host, graph_url and graph_scope is not given.",
        examples=["usgov"],
    )
    authority_host: HttpsUrl | None = Field(
        default=None,
        description="Entra ID's sign-in host. Default: the named cloud's (https://login.microsoftonline.com for "
        "`public`). A host that is no known Azure cloud (an emulator) is used without MSAL's instance discovery.",
        examples=["https://login.microsoftonline.com"],
    )
    graph_url: HttpsUrl | None = Field(
        default=None,
        description="Microsoft Graph's base URL, with its API version. Default: the named cloud's "
        "(https://graph.microsoft.com/v1.0 for `public`).",
        examples=["https://graph.microsoft.com/v1.0"],
    )
    graph_scope: str | None = Field(
        default=None,
        description="The scope the rotator's Graph tokens are asked for. Default: the named cloud's "
        "(https://graph.microsoft.com/.default for `public`).",
        examples=["https://graph.microsoft.com/.default"],
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="A PEM file of extra certificate authorities to trust on every HTTPS call, besides the "
        "system's: a TLS-inspecting proxy, a private CA, the emulator. Default: none.",
        examples=["/etc/ssl/private-ca.pem"],
    )

    @model_validator(mode="after")
    def _fill_from_name(self) -> Cloud:
        preset = CLOUDS[self.name]
        for key, value in preset.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        return self

    def endpoints(self) -> Endpoints:
        # All three are filled in by _fill_from_name.
        """The endpoints the clients use (a named cloud's filled in where none was given)."""
        assert self.authority_host is not None
        assert self.graph_url is not None
        assert self.graph_scope is not None
        return Endpoints(self.authority_host, self.graph_url, self.graph_scope, self.ca_bundle)


@dataclass(frozen=True)
class Endpoints:
    """A cloud's endpoints once resolved: what the adapters are built from."""

    authority_host: str
    graph_url: str
    graph_scope: str
    ca_bundle: Path | None = None

    @property
    def known_authority(self) -> bool:
        """An Azure cloud MSAL knows; any other authority host needs instance discovery disabled."""
        return any(self.authority_host == preset["authority_host"] for preset in CLOUDS.values())


def ca_bundle_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as the CA bundle, or None."""
    try:
        read_ca_bundle(path)
    except FileProblem as exc:
        return f"{path} cannot be used: {exc}: give the PEM file of the CA"
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc}): give the PEM file of the CA"
    return None


class IdentityConfig(StrictModel):
    """Who the rotator is when it calls Graph and Key Vault."""

    type: Literal["default", "workload_identity", "managed_identity", "client_secret"] = Field(
        default="default",
        description="How the rotator signs in. `default`: DefaultAzureCredential, the first of environment "
        "variables, workload identity, managed identity, Azure CLI ... that works. `workload_identity`: a "
        "Kubernetes pod whose service account is federated with an Entra app or managed identity. "
        "`managed_identity`: the managed identity of an Azure VM, App Service or node. `client_secret`: an app "
        "registration's secret, given as a reference.",
        examples=["workload_identity"],
    )
    tenant_id: str | None = Field(
        default=None,
        pattern=GUID,
        description="The tenant the rotator's own identity is registered in (client_secret, workload_identity). "
        "Default: $AZURE_TENANT_ID for workload_identity, else the target's tenant_id. Tokens are asked for each "
        "target's tenant, so a multi-tenant identity serves every tenant it is consented in.",
        examples=["00000000-0000-0000-0000-000000000000"],
    )
    client_id: str | None = Field(
        default=None,
        pattern=GUID,
        description="The rotator's own application (client) ID. Required for client_secret; for "
        "workload_identity default $AZURE_CLIENT_ID; for managed_identity and default it picks a user-assigned "
        "managed identity (default: the system-assigned one).",
        examples=["22222222-2222-2222-2222-222222222222"],
    )
    client_secret: SecretReference | None = Field(
        default=None,
        description="For type client_secret only: where the rotator's own secret is, {env: NAME} or "
        "{file: PATH}; never the secret itself.",
        examples=[{"file": "/var/run/secrets/rotator/client-secret"}],
    )
    token_file: Path | None = Field(
        default=None,
        description="For type workload_identity only: the projected service account token. Default: "
        "$AZURE_FEDERATED_TOKEN_FILE, which the Azure workload identity webhook sets.",
        examples=["/var/run/secrets/azure/tokens/azure-identity-token"],
    )

    @model_validator(mode="after")
    def _fields_fit_type(self) -> IdentityConfig:
        if self.type == "client_secret":
            missing = [k for k in ("client_id", "client_secret") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"type client_secret needs {' and '.join(missing)}")
        elif self.client_secret is not None:
            raise ValueError(f"client_secret is only used with type client_secret, not {self.type}")
        if self.token_file is not None and self.type != "workload_identity":
            raise ValueError("token_file is only used with type workload_identity")
        return self
