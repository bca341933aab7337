"""The Jira connector passes the standard conformance suite against the Jira emulator."""

from __future__ import annotations

from ticketwarden.plugins.jira.connector import JiraConnector
from ticketwarden.testing.conformance import connector_test_class

TestJiraConformance = connector_test_class(JiraConnector)
