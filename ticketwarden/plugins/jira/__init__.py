"""Jira Service Management, a built-in helpdesk connector (Jira Cloud REST API v3 and the
Service Management API).

The plugin registers :class:`~ticketwarden.plugins.jira.connector.JiraConnector` under the name
``jira`` through the entry-point group ``ticketwarden`` (``jira = "ticketwarden.plugins.jira"``),
exactly like a third-party connector. The package holds the connector (``connector.py``), JQL
escaping (``jql.py``), Atlassian Document Format conversion (``adf.py``), the emulator of the
Jira API (``emulator.py``) and the emulator's fixed site setup (``fixtures.py``).
Setting a desk up: ``docs/helpdesks/jira.md``.
"""

from __future__ import annotations

from ticketwarden import hookimpl
from ticketwarden.core.connector import Connector
from ticketwarden.plugins.jira.connector import JiraConnector

__all__ = ["JiraConnector", "register_connectors"]


@hookimpl
def register_connectors() -> dict[str, type[Connector]]:
    """The Jira connector, by the name ``ticketwarden.toml`` uses (``connector = "jira"``)."""
    return {"jira": JiraConnector}
