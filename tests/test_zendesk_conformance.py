"""The Zendesk connector passes the standard conformance suite against the Zendesk emulator."""

from __future__ import annotations

from ticketwarden.plugins.zendesk.connector import ZendeskConnector
from ticketwarden.testing.conformance import connector_test_class

TestZendeskConformance = connector_test_class(ZendeskConnector)
