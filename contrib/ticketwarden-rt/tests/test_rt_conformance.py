"""The RT connector passes the standard conformance suite against the RT emulator."""

from __future__ import annotations

from ticketwarden_rt import RTConnector

from ticketwarden.testing.conformance import connector_test_class

TestRTConformance = connector_test_class(RTConnector)
