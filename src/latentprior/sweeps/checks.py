"""Checks of a whole sweep before any trial starts, so that a bad sweep fails at once, in one line, having
created nothing: sample counts against the test sets, and runs whose saved config the sweep file has since changed.

(Each run's resolved config and the metric names are checked by :mod:`latentprior.sweeps.grid`, while the
sweep is parsed and expanded.)
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from latentprior.config import ConfigError, EvalConfig, config_to_dict, flatten
from latentprior.rundir import SweepDir, read_run_config
from latentprior.sweeps.grid import Trial

__all__ = ["check_sample_counts", "changed_runs", "changed_runs_message", "config_changes", "ChangedRunsError",
           "move_aside", "NOT_COMPARED"]

# Config keys that say how a run is executed or logged, not what it computes: changing them never makes a run
# "changed" (the budget, train.epochs and train.prior_epochs, does: a finished run's results are for its old budget).
# train.adam_impl and train.channels_last: a run keeps its own when resumed (TrainConfig.kept_from).
NOT_COMPARED = frozenset({"data.dir", "data.download", "data.verify", "train.progress", "train.threads",
                          "train.device", "train.log_every", "train.checkpoint_every", "train.samples_every",
                          "train.images_every", "train.compile", "train.channels_last", "train.adam_impl",
                          "train.loggers"})


class ChangedRunsError(ConfigError):
    """Finished or started runs of the sweep were made with another config than the sweep file now gives them."""


def check_sample_counts(ev: EvalConfig, trials: list[Trial]) -> None:
    """``eval.n`` must not exceed the test set of any run's dataset: the reference side would then hold fewer
    images than the generated side, and the numbers would not be the protocol the sweep file states."""
    from latentprior.data.load import SIZES
    from latentprior.evaluation.registry import uses_reference

    if not uses_reference(ev.metrics):  # metrics of generated samples alone have no reference side to fill
        return
    for name in sorted({t.cfg.data.name for t in trials}):
        size = SIZES.get(name, {}).get("test")
        if size is not None:
            ev.check_test_set(name, size)  # the rule `latentprior eval` applies too, with the test set it loads


def _plain(v: Any) -> str:
    # YAML gives back lists for tuples, and 1 where the config holds 1.0: compare numbers as floats, the rest as JSON.
    return json.dumps(float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v, default=str)


def _same(a: Any, b: Any) -> bool:
    return _plain(a) == _plain(b)


def config_changes(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every compared key whose value differs."""
    a, b = _absolute_folder(flatten(saved)), _absolute_folder(flatten(new))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if k not in NOT_COMPARED and not _same(a.get(k), b.get(k))]


def _absolute_folder(flat: dict[str, Any]) -> dict[str, Any]:
    """``data.path`` as the run records it: absolute (a relative folder is the working directory's)."""
    path = flat.get("data.path")
    return {**flat, "data.path": str(Path(path).expanduser().resolve())} if isinstance(path, str) else flat


def changed_runs(out: SweepDir, trials: list[Trial]) -> dict[str, list[str]]:
    """Run name -> its config changes, for every run folder of ``out`` whose ``config.yaml`` differs from the
    config the sweep now gives that run (a config that cannot be read counts as changed: it is refused by name)."""
    changed = {}
    for t in trials:
        saved = read_run_config(out.run(t.name), strict=True)
        if saved is not None:
            changes = config_changes(saved, config_to_dict(t.cfg))
            if changes:
                changed[t.name] = changes
    return changed


def changed_runs_message(out: SweepDir, changed: dict[str, list[str]]) -> str:
    """One line: how many runs changed, the first few with their changes, and the two ways on."""
    shown = "; ".join(f"{name} ({', '.join(ch[:3])}{', ...' if len(ch) > 3 else ''})"
                      for name, ch in list(changed.items())[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return (f"{len(changed)} run(s) in {out.path} were made with another config than the sweep file now gives "
            f"them: {shown}{more}; rerun with --rerun-changed to train them again (the old folders move to "
            f"{out.path / 'replaced'}), or restore the sweep file")


def move_aside(out: SweepDir, names: list[str]) -> list:
    """Move the named run folders to ``out/replaced/<name>-<time>`` (kept, not deleted); returns the new paths."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved = []
    for name in names:
        dest = out.replaced(name, stamp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out.run(name).path), str(dest))
        moved.append(dest)
    return moved
