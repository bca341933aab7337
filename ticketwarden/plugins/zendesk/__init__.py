"""Zendesk Support, the first built-in helpdesk connector.

The plugin registers :class:`~ticketwarden.plugins.zendesk.connector.ZendeskConnector` under the
name ``zendesk`` through the entry-point group ``ticketwarden`` (``zendesk =
"ticketwarden.plugins.zendesk"``), exactly like a third-party connector. The package holds the
connector (``connector.py``), the search-query escaping (``search.py``), the emulator of the
Zendesk API (``emulator.py``) and the emulator's fixed account setup (``fixtures.py``).
Setting a desk up: ``docs/helpdesks/zendesk.md``.
"""

from __future__ import annotations

from ticketwarden import hookimpl
from ticketwarden.core.connector import Connector
from ticketwarden.plugins.zendesk.connector import ZendeskConnector

__all__ = ["ZendeskConnector", "register_connectors"]


@hookimpl
def register_connectors() -> dict[str, type[Connector]]:
    """The Zendesk connector, by the name ``ticketwarden.toml`` uses (``connector = "zendesk"``)."""
    return {"zendesk": ZendeskConnector}
