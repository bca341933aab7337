"""``ticketwarden demo``: a simulated fortnight of support on the built-in helpdesk emulators.

:mod:`~ticketwarden.demo.stories` casts the shipped policy scenarios as the demo's tickets;
:mod:`~ticketwarden.demo.simulation` runs them through the emulators, the sidecar and the
sync job's timers on one simulated clock.
"""
