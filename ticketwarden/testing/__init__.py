"""The public kit for connector authors: the emulator base and the conformance suite.

- :mod:`ticketwarden.testing.emulator` — :class:`Emulator`, :class:`Fault`, :class:`FakeClock`.
- :mod:`ticketwarden.testing.conformance` — :func:`connector_test_class`, the standard tests
  every connector must pass (also a pytest plugin, registered as ``ticketwarden-conformance``).
"""
