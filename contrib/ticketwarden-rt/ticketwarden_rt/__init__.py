"""ticketwarden-rt — a Request Tracker 5 connector for ticketwarden, as a third-party plugin.

It registers :class:`~ticketwarden_rt.connector.RTConnector` under the name ``rt`` through the
entry-point group ``ticketwarden`` and uses nothing but ticketwarden's public SDK
(``ticketwarden.core.connector``, ``.http``, ``.errors``, ``.model``, ``.actions`` and
``ticketwarden.testing``). Setting a desk up: ``docs/helpdesks/rt.md`` in the ticketwarden
repository.
"""

from __future__ import annotations

from ticketwarden import hookimpl
from ticketwarden.core.connector import Connector
from ticketwarden_rt.connector import RTConnector

__all__ = ["RTConnector", "register_connectors"]

__version__ = "0.1.0"


@hookimpl
def register_connectors() -> dict[str, type[Connector]]:
    """The RT connector, by the name ``ticketwarden.toml`` uses (``connector = "rt"``)."""
    return {"rt": RTConnector}
