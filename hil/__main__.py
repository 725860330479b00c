"""``python -m hil`` runs the CLI."""

from hil.cli import main

main()
