"""Shared pieces of the benchmarks: the machine's matmul peak, FLOP counting, alternating timing, peak memory.

Numbers on a shared machine are noisy, so every comparison is made inside one process: the candidates get the
same warm-up and are then timed in alternation (A B A B ...), and the load average is printed with the table.
A training step here is the loop's step, ``Run.step`` (training/run.py), on a run that writes nothing.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from latentprior.config import Config, load_config
from latentprior.data import load_dataset
from latentprior.data.dataset import ImageDataset
from latentprior.training.device import resolve_device
from latentprior.training.run import Run, open_run

__all__ = ["ROOT", "DATA_DIR", "sync", "matmul_probe", "count_flops", "alternate", "PeakMemory", "train_images",
           "open_train_run", "machine_lines", "format_table", "setup_device"]

ROOT = Path(__file__).resolve().parents[1]
# the datasets: $LATENTPRIOR_DATA_DIR (the library's own variable), else ../shared/data beside the repository
DATA_DIR = Path(os.environ.get("LATENTPRIOR_DATA_DIR") or ROOT.parent / "shared" / "data")


def setup_device(name: str, threads: int | None) -> torch.device:
    if threads:
        torch.set_num_threads(threads)
    return resolve_device(name)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_probe(device: torch.device, dtype: torch.dtype = torch.float32) -> tuple[Callable[[], object], int]:
    """A large square ``torch.mm`` in ``dtype`` and its FLOPs: the machine's matmul peak, to be timed in
    alternation with the candidates it is the reference for, so that both see the same load.

    On CUDA fp32 this is true fp32 (TF32 is off unless the caller enabled it), the honest reference for fp32
    training; on the CPU it is what MKL reaches with the current thread count and the current load.
    """
    n = 8192 if device.type == "cuda" else 2048
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    return (lambda: torch.mm(a, b)), 2 * n**3


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (matmuls and convolutions, forward and backward) by ``FlopCounterMode``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def alternate(candidates: dict[str, Callable[[], object]], device: torch.device, rounds: int = 2,
              target_s: float = 0.5, min_total_s: float = 0.0) -> dict[str, list[float]]:
    """Seconds per call of each candidate in each round, timed A B B A A B ... after one warm-up call each.

    In a round each candidate runs ``steps`` consecutive calls, its own ``steps`` chosen from its warm-up so
    its turn lasts about ``target_s`` (at least one call). At least ``rounds`` rounds, more until a round's
    longest turn adds up to ``min_total_s``. Short turns, many rounds: the load of a shared machine changes
    within seconds, and per-round ratios pair candidates measured under the same load.
    """
    first = {}
    for name, fn in candidates.items():
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        first[name] = max(time.perf_counter() - t, 1e-6)
    steps = {name: max(1, int(target_s / t)) for name, t in first.items()}
    longest = max(steps[name] * first[name] for name in candidates)
    rounds = max(rounds, math.ceil(min_total_s / longest))
    out: dict[str, list[float]] = {k: [] for k in candidates}
    order = list(candidates.items())
    for r in range(rounds):
        # A B, then B A: a candidate's place in the round (what ran just before it, the allocator's state,
        # the clock) biases it by a percent or two here; reversing every other round cancels that.
        for name, fn in order if r % 2 == 0 else order[::-1]:
            sync(device)
            t = time.perf_counter()
            for _ in range(steps[name]):
                fn()
            sync(device)
            out[name].append((time.perf_counter() - t) / steps[name])
    return out


class PeakMemory:
    """Peak memory inside the ``with`` block above what was in use when it began, in MiB: allocated tensors on
    CUDA; on the CPU the process's resident set (peak reset through /proc/self/clear_refs). Build a model
    inside the block and ``mib`` is what that model, its optimizer state and one step need."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.mib, self._base = device, float("nan"), 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:  # not Linux, or not allowed: the peak is then the process's lifetime peak
                pass
            self._base = _status_mib("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak = _status_mib("VmHWM")
        self.mib = peak - self._base


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train_images(name: str, device: torch.device, random_n: int = 10000) -> tuple[ImageDataset, str]:
    """The training split on ``device`` if its files are in ../shared/data, else random uint8 images of the
    same shape (speed does not depend on pixel values); the second value says which."""
    shapes = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32), "celeba": (3, 64, 64)}
    try:
        return load_dataset(name, "train", DATA_DIR).to(device), f"{name} train ({DATA_DIR})"
    except Exception:  # a missing or unbuilt dataset: fall back, and say so in the table
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (random_n, *shapes[name]), dtype=torch.uint8, generator=g)
        return ImageDataset(images, name=name, split="random").to(device), f"random uint8 {shapes[name]}"


def open_train_run(cfg: Config | str | Path, data: ImageDataset, device: torch.device, **overrides) -> Run:
    """The run of ``cfg`` (a path relative to the repository, or a Config) on ``data`` and ``device``, writing
    nothing: ``run.step()`` is the training loop's step, exactly. Threads stay as the benchmark set them."""
    cfg = load_config(ROOT / cfg) if isinstance(cfg, str | Path) else cfg
    return open_run(cfg.replace(**{"train.device": str(device), "train.threads": None, **overrides}), None, data=data)


def machine_lines(device: torch.device) -> list[str]:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return [f"# device {device} ({what}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
            f"cores {os.cpu_count()}, load average {load}"]


def format_table(rows: list[dict[str, object]], columns: list[str]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    cells = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
