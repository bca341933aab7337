"""The Freshdesk emulator's fixed account setup, shared by the emulator and the conformance
configuration: the custom ticket fields an administrator creates for ticketwarden (see
``docs/helpdesks/freshdesk.md``), the contact and company fields for authorized contacts, the
groups and agents escalation maps to, the status and priority codes, and the test credentials.
Real desks configure their own names and ids in ``ticketwarden.toml``; nothing here is used
outside emulators and tests.
"""

from __future__ import annotations

DOMAIN = "example.freshdesk.com"
BASE_URL = f"https://{DOMAIN}"
API_KEY = "emulator-api-key-Qm9Xw7rT2vLp8sZk4nYd"
"""Sent as the basic-auth user name; the password is ignored (conventionally ``X``)."""
WEBHOOK_SECRET = "dGhpc19mcmVzaGRlc2tfc2VjcmV0X2lzX2Zvcl90ZXN0aW5n"
"""Shared secret of the automation-rule webhook (HMAC key, or the static secret header)."""

# Webhook headers the automation rule sends (Freshdesk itself signs nothing).
SIGNATURE_HEADER = "X-Ticketwarden-Signature"
"""``sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>``."""
TIMESTAMP_HEADER = "X-Ticketwarden-Timestamp"
"""Unix seconds, the ``timestamp`` in the signed message."""
DELIVERY_HEADER = "X-Ticketwarden-Delivery"
"""Delivery id; an automation rule can only send ``{{ticket.id}}-{{ticket.updated_at}}``-style
placeholders, so it is stable per ticket revision rather than a uuid."""
SECRET_HEADER = "X-Ticketwarden-Secret"
"""Fallback for rules that cannot compute an HMAC: the static shared secret itself, compared in
constant time."""

TICKET_FIELDS: dict[str, str] = {
    "severity": "cf_severity",
    "server_url": "cf_server_url",
    "module": "cf_module",
    "steps": "cf_steps",
    "sample_machines": "cf_sample_machines",
    "version": "cf_version",
    "sev1_contact": "cf_sev1_contact",
    "resolution_reason": "cf_resolution_reason",
}
"""Canonical field name → custom ticket field name (a key of the ticket's ``custom_fields``)."""

SEVERITY_VALUES: dict[str, int] = {
    "Severity 1": 1,
    "Severity 2": 2,
    "Severity 3": 3,
    "Severity 4": 4,
}
"""Choices of the ``cf_severity`` drop-down (Freshdesk stores the choice's label) → severity."""

FOLLOW_UP_FIELD = "cf_follow_up_of"
"""A custom *number* ticket field holding the id of the closed ticket a follow-up continues.
Freshdesk has no follow-up link of its own (parent-child and tracker tickets mean something else
and need plan features), so the follow-up is a new ticket (``POST /api/v2/tickets``) with
``custom_fields: {"cf_follow_up_of": <closed ticket id>}``; the filter API finds it again with
``"cf_follow_up_of:<id>"``."""

UNKNOWN_FIELD = "cf_legacy_region"
"""A custom ticket field the emulated account has but no ticketwarden configuration maps (the
emulator adds it with ``add_unknown_field``)."""

CONTACT_FIELDS: dict[str, str] = {
    "authorized": "tw_authorized_contact",
    "certified_until": "tw_certified_admin_until",
    "available_24x7": "tw_available_24x7",
}
"""Keys of the contact's ``custom_fields`` holding roster data (contact and company custom
fields carry no ``cf_`` prefix in the API): a checkbox, a date ``YYYY-MM-DD`` (or null), a
checkbox."""

COMPANY_FIELDS: dict[str, str] = {
    "support_tier": "tw_support_tier",
    "authorized_contacts": "tw_authorized_contacts",
}
"""Keys of the company's ``custom_fields``: a text field (e.g. ``premium``) and a multi-line
text field listing authorized contacts' e-mail addresses, one per line."""

STATUSES: dict[str, int] = {
    "open": 2,
    "pending": 3,
    "resolved": 4,
    "closed": 5,
}
"""Freshdesk's built-in ticket statuses."""

CUSTOM_STATUSES: dict[int, str] = {
    6: "Waiting on Third Party",
}
"""Custom statuses an administrator added (Freshdesk numbers them from 6 upwards)."""

CUSTOM_STATUS_MEANING: dict[int, str] = {
    6: "on_hold",
}
"""How the desk configuration maps each custom status to a canonical status."""

PRIORITIES: dict[str, int] = {
    "low": 1,
    "normal": 2,  # Freshdesk calls it "Medium"
    "high": 3,
    "urgent": 4,
}
"""Canonical priority → Freshdesk priority code."""

SOURCES: dict[str, int] = {
    "email": 1,
    "portal": 2,
    "phone": 3,
    "chat": 7,
    "feedback_widget": 9,
    "outbound_email": 10,
}
"""Ticket ``source`` codes."""

GROUPS: dict[str, int] = {
    "support-on-call": 43000100101,
    "support-leads": 43000100102,
    "support-management": 43000100103,
    "consulting": 43000100104,
    "education": 43000100105,
}
"""Policy escalation target → Freshdesk group id."""

AGENTS: dict[str, int] = {
    "support-on-call": 43000200101,
    "support-leads": 43000200102,
    "support-management": 43000200103,
    "consulting": 43000200104,
    "education": 43000200105,
}
"""Policy escalation target → the agent id (``responder_id``) who leads that group."""

AGENT_ID = 43000200001
"""The agent the API key belongs to (the agent ticketwarden acts as)."""
AGENT_EMAIL = "ticketwarden@example.com"
