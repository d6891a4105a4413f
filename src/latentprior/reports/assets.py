"""Copy what a report shows of one run into the report folder, so that the folder stands on its own.

    REPORT/runs/<name>/samples.png           the run's final sample grid (samples/samples.png)
    REPORT/runs/<name>/reconstructions.png   inputs (top row) over their reconstructions
    REPORT/runs/<name>/interpolation.png     input, decoded slerp path, input
    REPORT/runs/<name>/losses.png            drawn here from metrics.jsonl
    REPORT/runs/<name>/config.yaml, metrics.jsonl

The report links these copies with relative paths, so it can be moved, zipped or served as it is. A run's
TensorBoard folder is not copied (it can be large); the page links it where it lies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from latentprior.atomic import atomic_write_bytes
from latentprior.reports.collect import RunRecord
from latentprior.reports.plots import plot_losses
from latentprior.rundir import RunDir, read_metrics

__all__ = ["RunAssets", "copy_run_assets", "IMAGES", "DISPLAY_WIDTH"]

# The run's preview grids shown as pictures (copied under their own file names), in page order: (role, caption)
IMAGES = (("samples", "samples G(z), z ~ p(z)"),
          ("reconstructions", "inputs (top) and their reconstructions"),
          ("interpolation", "interpolation between two inputs (ends: the inputs)"))
# Run files copied as they are, under their own names: the config and the metric log
COPIED = (lambda rd: rd.config, lambda rd: rd.metrics)
DISPLAY_WIDTH = 300  # target on-screen width (CSS px); images are shown at an integer multiple of their own size


@dataclass
class RunAssets:
    """What the report holds of one run: ``images`` as (path, caption, display width, display height)."""

    images: list[tuple[Path, str, int, int]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # config.yaml, metrics.jsonl copies
    tensorboard: Path | None = None  # the run's own tb/ folder (not copied)


def _copy(src: Path, dest: Path) -> Path:
    atomic_write_bytes(dest, src.read_bytes())
    return dest


def _display_size(path: Path, *, plot: bool = False) -> tuple[int, int]:
    """Image grids: their size times the largest integer that keeps them within DISPLAY_WIDTH (at least 1: never
    shrunk), so every pixel stays a crisp square. Plots (drawn at one pixel per CSS pixel): their own size."""
    with Image.open(path) as im:
        w, h = im.size
    if plot:
        return w, h
    k = max(1, DISPLAY_WIDTH // max(w, 1))
    return w * k, h * k


def copy_run_assets(record: RunRecord, dest: Path) -> RunAssets:
    """Copy ``record``'s pictures and files into ``dest`` and draw its loss curves there."""
    out, rd = RunAssets(), RunDir(record.run_dir)
    for role, caption in IMAGES:
        src = rd.preview(role)
        if src.is_file():
            path = _copy(src, dest / src.name)
            out.images.append((path, caption, *_display_size(path)))
    log = read_metrics(record.run_dir)
    losses = plot_losses(log, dest / "losses.png")
    if losses is not None:
        shaded = " (grey: prior-only phase)" if any(r.get("phase") == "prior" for r in log) else ""
        out.images.append((losses, f"losses from {rd.metrics.name}" + shaded, *_display_size(losses, plot=True)))
    for source in COPIED:
        src = source(rd)
        if src.is_file():
            out.files[src.name] = _copy(src, dest / src.name)
    out.tensorboard = rd.tensorboard.resolve() if rd.tensorboard.is_dir() else None
    return out
