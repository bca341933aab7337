"""``python -m ticketwarden`` runs the command line."""

from ticketwarden.core.cli import main

main()
