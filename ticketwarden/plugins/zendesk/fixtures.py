"""The Zendesk emulator's fixed account setup, shared by the emulator and the conformance
configuration: the custom ticket fields an administrator creates for ticketwarden (see
``docs/helpdesks/zendesk.md``), the user and organization fields for authorized contacts, the
groups escalation maps to, and the test credentials. Real desks configure their own ids in
``ticketwarden.toml``; nothing here is used outside emulators and tests.
"""

from __future__ import annotations

SUBDOMAIN = "example"
AGENT_EMAIL = "ticketwarden@example.com"
API_TOKEN = "emulator-api-token-6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"
OAUTH_TOKEN = "emulator-oauth-token-a9f3c1"
WEBHOOK_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="

TICKET_FIELDS: dict[str, int] = {
    "severity": 6164040575001,
    "server_url": 6164040575002,
    "module": 6164040575003,
    "steps": 6164040575004,
    "sample_machines": 6164040575005,
    "version": 6164040575006,
    "sev1_contact": 6164040575007,
    "resolution_reason": 6164040575008,
}
"""Canonical field name → custom ticket field id."""

SEVERITY_VALUES: dict[str, int] = {
    "severity_1": 1,
    "severity_2": 2,
    "severity_3": 3,
    "severity_4": 4,
}
"""Tag values of the severity drop-down field (Zendesk stores a drop-down's option tag)."""

USER_FIELDS = {
    "authorized": "tw_authorized_contact",
    "certified_until": "tw_certified_admin_until",
    "available_24x7": "tw_available_24x7",
}
"""Keys of the user fields (``user_fields`` on a user) holding roster data."""

GROUPS: dict[str, int] = {
    "support-on-call": 360000000101,
    "support-leads": 360000000102,
    "support-management": 360000000103,
    "consulting": 360000000104,
    "education": 360000000105,
}
"""Policy escalation target → Zendesk group id."""

AGENT_ID = 6130907993114
"""The user id of the API user (the agent ticketwarden acts as)."""
