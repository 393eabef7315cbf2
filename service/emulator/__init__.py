"""A local, faithful stand-in for Entra ID, Microsoft Graph, Key Vault and Dime.Scheduler's endpoint.

Imports nothing from the rest of `service`; the service imports it only from its `emulator` and `demo`
commands. See `server.Emulator` for the in-process API and `standalone.main` for the command.
"""

from service.emulator.clock import Clock
from service.emulator.directory import DIRECTORY_ROLES, GRAPH_APP_ROLES, AppRecord, Identity, SpRecord
from service.emulator.faults import RequestInfo
from service.emulator.receiver import Delivery
from service.emulator.server import Emulator, PasswordInfo, RequestRecord

__all__ = [
    "DIRECTORY_ROLES",
    "GRAPH_APP_ROLES",
    "AppRecord",
    "Clock",
    "Delivery",
    "Emulator",
    "Identity",
    "PasswordInfo",
    "RequestInfo",
    "RequestRecord",
    "SpRecord",
]
