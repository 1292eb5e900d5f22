"""``python -m pipeline`` runs the trialproof CLI."""

from pipeline.cli import main

main()
