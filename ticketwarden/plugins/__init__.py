"""The built-in helpdesk connectors, each a plugin registered through the ``ticketwarden``
entry-point group exactly like a third-party one."""
