"""The Jira emulator's fixed site setup, shared by the emulator and the conformance
configuration: the Service Management project, its workflow statuses, the custom fields an
administrator creates for ticketwarden (see ``docs/helpdesks/jira.md``), the organization
properties holding authorized contacts, the agents escalation maps to, and the test
credentials. Real sites configure their own ids in ``ticketwarden.toml``; nothing here is used
outside emulators and tests.
"""

from __future__ import annotations

SITE = "example"
AGENT_EMAIL = "ticketwarden@example.com"
API_TOKEN = "emulator-api-token-ATATT3xFfGF0T4JNjE5ZmQ2"
OAUTH_TOKEN = "emulator-oauth-token-eyJraWQiOiJqaXJh"
WEBHOOK_SECRET = "emulator-webhook-secret-7d1f0c2b9e"

AGENT_ACCOUNT_ID = "5b10ac8d82e05b22cc7d4ef5"
"""The account id of the API user (the agent ticketwarden acts as)."""
AGENT_TIME_ZONE = "Europe/Berlin"
"""The API user's profile time zone: JQL dates are read in it."""

PROJECT_KEY = "SUP"
PROJECT_ID = "10000"
SERVICE_DESK_ID = "1"
ISSUE_TYPE_ID = "10004"
ISSUE_TYPE_NAME = "Support"

FIELDS: dict[str, str] = {
    "severity": "customfield_10100",
    "server_url": "customfield_10101",
    "module": "customfield_10102",
    "steps": "customfield_10103",
    "sample_machines": "customfield_10104",
    "version": "customfield_10105",
    "sev1_contact": "customfield_10106",
    "resolution_reason": "customfield_10107",
}
"""Canonical field name → custom field id."""

FIELD_TYPES: dict[str, str] = {
    "customfield_10100": "select",
    "customfield_10103": "adf",
    "customfield_10104": "adf",
    "customfield_10107": "select",
}
"""How each custom field that is not single-line text is written (``options.field_types``)."""

ORGANIZATIONS_FIELD = "customfield_10002"
"""Service Management's *Organizations* field."""
UNKNOWN_FIELD = "customfield_10199"
"""A custom field the site has but no ticketwarden configuration maps."""

SEVERITY_VALUES: dict[str, int] = {
    "Severity 1": 1,
    "Severity 2": 2,
    "Severity 3": 3,
    "Severity 4": 4,
}
"""Options of the severity select field."""

STATUSES: dict[str, tuple[str, str]] = {
    "1": ("Open", "new"),
    "10001": ("Waiting for support", "indeterminate"),
    "3": ("In Progress", "indeterminate"),
    "10002": ("Waiting for customer", "indeterminate"),
    "10003": ("Pending", "indeterminate"),
    "5": ("Resolved", "done"),
    "6": ("Closed", "done"),
}
"""Status id → (name, status category key) of the project's workflow."""

STATUS_MAPPING: dict[str, str] = {
    "Waiting for customer": "waiting_on_customer",
    "Pending": "on_hold",
    "Resolved": "resolved",
    "Closed": "closed",
}
"""Workflow statuses the desk configuration maps by name (the rest map by category)."""

AGENTS: dict[str, str] = {
    "support-on-call": "5b10ac8d82e05b22cc7d4f01",
    "support-leads": "5b10ac8d82e05b22cc7d4f02",
    "support-management": "5b10ac8d82e05b22cc7d4f03",
    "consulting": "5b10ac8d82e05b22cc7d4f04",
    "education": "5b10ac8d82e05b22cc7d4f05",
}
"""Policy escalation target → the account id of the agent it is assigned to."""

COMPONENTS = ("Escalations", "Consulting", "Training")
"""Components of the project (a target may escalate by component)."""

ORG_PROPERTIES = {
    "authorized": "tw.authorized_contacts",
    "certified_until": "tw.certified_admin_until",
    "available_24x7": "tw.available_24x7",
}
"""Organization property keys holding roster data."""
