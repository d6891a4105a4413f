"""Experiment commands of the CLI (sweeps, figures, reports) — registered into ``latentprior``'s parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["add_experiment_commands", "EXPERIMENT_COMMANDS"]

EXPERIMENT_COMMANDS: dict[str, Callable[[argparse.Namespace], dict]] = {}


def add_experiment_commands(sub: argparse._SubParsersAction) -> None:
    """Add the experiment sub-commands to the main parser."""
