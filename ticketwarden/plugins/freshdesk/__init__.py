"""Freshdesk (API v2), a built-in helpdesk connector.

The plugin registers :class:`~ticketwarden.plugins.freshdesk.connector.FreshdeskConnector` under
the name ``freshdesk`` through the entry-point group ``ticketwarden`` (``freshdesk =
"ticketwarden.plugins.freshdesk"``), exactly like a third-party connector. The package holds the
connector (``connector.py``), the filter-API query building (``search.py``), the emulator of the
Freshdesk API (``emulator.py``) and the emulator's fixed account setup (``fixtures.py``).
Setting a desk up: ``docs/helpdesks/freshdesk.md``.
"""

from __future__ import annotations

from ticketwarden import hookimpl
from ticketwarden.core.connector import Connector
from ticketwarden.plugins.freshdesk.connector import FreshdeskConnector

__all__ = ["FreshdeskConnector", "register_connectors"]


@hookimpl
def register_connectors() -> dict[str, type[Connector]]:
    """The Freshdesk connector, by the name ``ticketwarden.toml`` uses
    (``connector = "freshdesk"``)."""
    return {"freshdesk": FreshdeskConnector}
