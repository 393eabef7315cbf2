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

    name: Literal["public", "usgov", "china"] = "public"
    authority_host: HttpsUrl | None = None
    graph_url: HttpsUrl | None = None
    graph_scope: str | None = None
    ca_bundle: Path | None = None

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

    type: Literal["default", "workload_identity", "managed_identity", "client_secret"] = "default"
    tenant_id: str | None = Field(default=None, pattern=GUID)
    client_id: str | None = Field(default=None, pattern=GUID)
    client_secret: SecretReference | None = None
    token_file: Path | None = None

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
