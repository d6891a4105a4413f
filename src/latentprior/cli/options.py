"""Option types and option groups shared by the verbs."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

__all__ = ["positive_int", "positive_float", "add_data_options", "add_weights_options", "apply_dir_options",
           "data_overrides", "DIR_ENV"]

# Options that set an environment variable for this process (and the sweep's trials): the one way every verb,
# and every module below it, finds these folders.
DIR_ENV = {"weights_dir": "LATENTPRIOR_WEIGHTS_DIR", "cache_dir": "LATENTPRIOR_CACHE_DIR"}


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (a count of images, steps, trials...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number > 0 (a number of epochs)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be > 0 and finite, got {text}")
    return value


def add_data_options(p: argparse.ArgumentParser, *, fetch: bool = False) -> None:
    """``--data-dir`` (and, for a new run, ``--no-verify`` / ``--download``)."""
    p.add_argument("--data-dir", help="dataset directory (default: the run's data.dir, else $LATENTPRIOR_DATA_DIR)")
    if fetch:
        p.add_argument("--no-verify", action="store_true", help="accept data files whose checksums do not match")
        p.add_argument("--download", action="store_true", help="fetch missing data files from the official URLs")


def add_weights_options(p: argparse.ArgumentParser, *, cache: bool = False) -> None:
    """``--weights-dir`` (the VGG/AlexNet trunks of perceptual losses and LPIPS) and, with ``cache``,
    ``--cache-dir`` (reference features and classifiers)."""
    p.add_argument("--weights-dir", help="folder of the VGG/AlexNet trunk weights (default: "
                   "$LATENTPRIOR_WEIGHTS_DIR)")
    if cache:
        p.add_argument("--cache-dir", help="feature and classifier cache (default: $LATENTPRIOR_CACHE_DIR, else "
                       "~/.cache/latentprior)")


def apply_dir_options(args: argparse.Namespace) -> None:
    """``--weights-dir`` / ``--cache-dir`` given: set their environment variables (:data:`DIR_ENV`) to the
    resolved folders, exactly as if the user had exported them."""
    for name, env in DIR_ENV.items():
        value = getattr(args, name, None)
        if value:
            os.environ[env] = str(Path(value).resolve())


def data_overrides(args: argparse.Namespace) -> list[str]:
    """The ``data.*`` config overrides the data options ask for (``section.key=value`` strings)."""
    out = []
    if getattr(args, "data_dir", None):
        out.append(f"data.dir={json.dumps(str(Path(args.data_dir).resolve()))}")
    if getattr(args, "no_verify", False):
        out.append("data.verify=false")
    if getattr(args, "download", False):
        out.append("data.download=true")
    return out
