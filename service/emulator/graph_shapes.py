"""How Graph v1.0 writes the directory's objects, and the small part of OData queries it honours.

Kept apart from the routes so the resource shapes (application, servicePrincipal, passwordCredential,
appRoleAssignment, tenantAppManagementPolicy) can be read in one place against Graph's reference.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from service.emulator.directory import (
    AppRecord,
    AppRoleAssignment,
    PasswordRecord,
    SpRecord,
    Tenant,
    UserRecord,
)
from service.emulator.wire import iso

# The tenant-wide default policy always has this id in Graph.
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"
VERIFIED_PUBLISHER_NONE: dict[str, Any] = {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None}


class QueryError(ValueError):
    """An OData query option Graph would refuse."""


def password_json(record: PasswordRecord, secret_text: str | None = None) -> dict[str, Any]:
    return {
        "customKeyIdentifier": None,
        "displayName": record.display_name,
        "endDateTime": iso(record.end),
        "hint": record.hint,
        "keyId": record.key_id,
        "secretText": secret_text,
        "startDateTime": iso(record.start),
    }


def app_json(app: AppRecord, tenant: Tenant) -> dict[str, Any]:
    return {
        "id": app.object_id,
        "deletedDateTime": None,
        "appId": app.app_id,
        "applicationTemplateId": None,
        "disabledByMicrosoftStatus": None,
        "createdDateTime": iso(app.created_at),
        "displayName": app.display_name,
        "description": app.description,
        "groupMembershipClaims": None,
        "identifierUris": list(app.identifier_uris),
        "isDeviceOnlyAuthSupported": None,
        "isFallbackPublicClient": None,
        "notes": None,
        "publisherDomain": tenant.domain,
        "serviceManagementReference": None,
        "signInAudience": app.sign_in_audience,
        "tags": list(app.tags),
        "tokenEncryptionKeyId": None,
        "defaultRedirectUri": None,
        "certification": None,
        "addIns": [],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": None,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": [],
        },
        "appRoles": [],
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "keyCredentials": [],
        "optionalClaims": None,
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [password_json(p) for p in app.passwords],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [dict(r) for r in app.required_resource_access],
        "verifiedPublisher": dict(VERIFIED_PUBLISHER_NONE),
        "web": {
            "homePageUrl": None,
            "logoutUrl": None,
            "redirectUris": list(app.redirect_uris),
            "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
            "redirectUriSettings": [{"uri": uri, "index": None} for uri in app.redirect_uris],
        },
        "spa": {"redirectUris": []},
    }


def sp_json(sp: SpRecord) -> dict[str, Any]:
    return {
        "id": sp.object_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": [],
        "appDisplayName": sp.display_name,
        "appDescription": None,
        "appId": sp.app_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": sp.app_owner_organization_id,
        "appRoleAssignmentRequired": False,
        "createdDateTime": iso(sp.created_at) if sp.created_at else None,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": sp.display_name,
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": [],
        "servicePrincipalNames": [sp.app_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "info": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": [dict(role) for role in sp.app_roles],
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": dict(VERIFIED_PUBLISHER_NONE),
    }


def user_json(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.object_id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": None,
        "jobTitle": None,
        "mail": None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": None,
        "userPrincipalName": user.upn,
    }


def directory_object_json(obj: AppRecord | SpRecord | UserRecord, tenant: Tenant) -> dict[str, Any]:
    """A directoryObject as it appears in a collection of mixed types (owners, directoryObjects/{id})."""
    if isinstance(obj, UserRecord):
        return {"@odata.type": "#microsoft.graph.user", **user_json(obj)}
    if isinstance(obj, SpRecord):
        return {"@odata.type": "#microsoft.graph.servicePrincipal", **sp_json(obj)}
    return {"@odata.type": "#microsoft.graph.application", **app_json(obj, tenant)}


def assignment_json(assignment: AppRoleAssignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "deletedDateTime": None,
        "appRoleId": assignment.app_role_id,
        "createdDateTime": iso(assignment.created_at),
        "principalDisplayName": assignment.principal_display_name,
        "principalId": assignment.principal_id,
        "principalType": assignment.principal_type,
        "resourceDisplayName": assignment.resource_display_name,
        "resourceId": assignment.resource_id,
    }


def iso_duration(delta: timedelta) -> str:
    """timedelta as an ISO 8601 duration the way Graph writes `maxLifetime` (P90D, PT12H...)."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    if clock:
        text += "T" + clock
    return text if text != "P" else "PT0S"


def app_policy_id(app: AppRecord) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"appManagementPolicy/{app.object_id}"))


def password_restrictions(lifetime: timedelta | None, applies_after: str) -> list[dict[str, Any]]:
    if lifetime is None:
        return []
    return [
        {
            "restrictionType": "passwordLifetime",
            "state": "enabled",
            "maxLifetime": iso_duration(lifetime),
            "restrictForAppsCreatedAfterDateTime": applies_after,
        }
    ]


def tenant_policy_json(tenant: Tenant) -> dict[str, Any]:
    restrictions = password_restrictions(tenant.password_max_lifetime, tenant.policy_applies_after)
    return {
        "id": DEFAULT_POLICY_ID,
        "description": "Default app management tenant policy",
        "displayName": "Default app management tenant policy",
        "isEnabled": bool(restrictions),
        "applicationRestrictions": {"passwordCredentials": restrictions, "keyCredentials": []},
        "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []},
    }


def app_policy_json(app: AppRecord, lifetime: timedelta, applies_after: str) -> dict[str, Any]:
    return {
        "id": app_policy_id(app),
        "description": f"Password lifetime restriction for {app.display_name}",
        "displayName": f"{app.display_name} credential policy",
        "isEnabled": True,
        "restrictions": {
            "passwordCredentials": password_restrictions(lifetime, applies_after),
            "keyCredentials": [],
        },
    }


# -- OData query options ----------------------------------------------------------------------------

_EQ = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_STARTSWITH = re.compile(r"^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$", re.IGNORECASE)
_IN = re.compile(r"^\s*(\w+)\s+in\s+\(((?:\s*'(?:[^']|'')*'\s*,?)*)\)\s*$", re.IGNORECASE)
_IN_VALUE = re.compile(r"'((?:[^']|'')*)'")
# Graph rewrites `in` into OR clauses and refuses more than this many.
MAX_OR_CLAUSES = 15


def matcher(expression: str | None, allowed: frozenset[str], type_name: str) -> Callable[[dict[str, Any]], bool]:
    """A test for `prop eq 'v'`, `startswith(prop,'v')` or `prop in ('v1', ...)`; anything else is refused as
    Graph does (QueryError). Graph compares ids and names case-insensitively."""
    if not expression:
        return lambda item: True
    prop: str
    if (match := _EQ.match(expression)) is not None:
        prop, wanted = match.group(1), {match.group(2).replace("''", "'").lower()}
        starts = False
    elif (match := _STARTSWITH.match(expression)) is not None:
        prop, prefix, starts = match.group(1), match.group(2).replace("''", "'").lower(), True
    elif (match := _IN.match(expression)) is not None:
        prop, starts = match.group(1), False
        values = [v.replace("''", "'") for v in _IN_VALUE.findall(match.group(2))]
        if not values:
            raise QueryError("Unsupported Query.")
        if len(values) > MAX_OR_CLAUSES:
            raise QueryError(
                "Too many child clauses specified in search filter expression containing 'OR' operators: "
                f"{len(values)}. Max allowed: {MAX_OR_CLAUSES}."
            )
        wanted = {v.lower() for v in values}
    else:
        raise QueryError("Unsupported Query.")
    if prop not in allowed:
        raise QueryError(
            f"Unsupported or invalid query filter clause specified for property '{prop}' of resource '{type_name}'."
        )
    if starts:
        return lambda item: str(item.get(prop) or "").lower().startswith(prefix)
    return lambda item: str(item.get(prop) or "").lower() in wanted


def filter_items(
    items: list[dict[str, Any]], expression: str | None, allowed: frozenset[str], type_name: str
) -> list[dict[str, Any]]:
    """The items that :func:`matcher` accepts."""
    test = matcher(expression, allowed, type_name)
    return [i for i in items if test(i)]


def select(entity: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return entity
    kept = {k: v for k, v in entity.items() if k in fields}
    if "@odata.type" in entity:
        kept = {"@odata.type": entity["@odata.type"], **kept}
    return kept


def select_fields(raw: str | None, known: set[str], type_name: str) -> list[str] | None:
    if not raw:
        return None
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    for name in fields:
        if name not in known:
            raise QueryError(f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.")
    return fields
