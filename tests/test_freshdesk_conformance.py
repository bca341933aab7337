"""The Freshdesk connector passes the standard conformance suite against the Freshdesk emulator."""

from __future__ import annotations

from ticketwarden.plugins.freshdesk.connector import FreshdeskConnector
from ticketwarden.testing.conformance import connector_test_class

TestFreshdeskConformance = connector_test_class(FreshdeskConnector)
