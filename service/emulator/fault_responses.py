"""Injected error answers in the error shape of the service the path belongs to.

A client's error handling is exercised only if an injected 429 or 503 looks like the real one: Graph's
OData error with `TooManyRequests`, Entra's AADSTS body, Key Vault's `{"error": {"code", "message"}}`
with its challenge on a 401.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from service.emulator.entra import error_body
from service.emulator.graph import error_response
from service.emulator.keyvault import error_json
from service.emulator.wire import json_response, new_request_id

if TYPE_CHECKING:
    from service.emulator.server import Emulator

GRAPH_CODES = {
    400: ("BadRequest", "Invalid request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "Resource does not exist."),
    409: ("Conflict", "The request conflicts with the current state of the resource."),
    429: ("TooManyRequests", "Too many requests, please retry later."),
    500: ("UnknownError", "An internal server error occurred."),
    502: ("BadGateway", "The gateway received an invalid response."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
    504: ("GatewayTimeout", "The gateway did not receive a timely response."),
}
VAULT_CODES = {
    401: ("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
    403: ("Forbidden", "Caller is not authorized to perform action on resource."),
    404: ("NotFound", "The requested resource was not found."),
    409: ("Conflict", "The request conflicts with the current state of the resource."),
    429: (
        "Throttled",
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
    ),
    500: ("InternalServerError", "An unexpected error occurred."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
}


def fault_response(service: str, status: int, retry_after: int, emulator: Emulator) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if status in (429, 503) else {}
    now = emulator.clock.now()
    if service == "graph":
        code, message = GRAPH_CODES.get(status, ("UnknownError", "An error occurred."))
        request_id = new_request_id()
        return error_response(
            status,
            code,
            message,
            request_id=request_id,
            client_request_id=request_id,
            now_text=now.strftime("%Y-%m-%dT%H:%M:%S"),
            headers=headers,
        )
    if service == "keyvault":
        code, message = VAULT_CODES.get(status, ("BadParameter" if status < 500 else "InternalServerError", "Error."))
        if status == 401:
            headers.update(emulator.keyvault._challenge_header())
        return json_response(error_json(code, message), status=status, headers=headers)
    if service == "entra":
        if status == 429:
            body = error_body(
                emulator.url,
                now,
                "temporarily_unavailable",
                90055,
                "There are too many incoming requests. Please try again later.",
            )
        elif status >= 500:
            body = error_body(
                emulator.url, now, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again."
            )
        else:
            body = error_body(emulator.url, now, "invalid_request", 90000, "Injected failure.")
        return json_response(body, status=status, headers=headers)
    return json_response({"error": "injected_failure", "status": status}, status=status, headers=headers)
