"""One training step as a replayed CUDA graph: every update (forward, backward, Adam) launched at once.

At batch 100 the paper's MNIST model is launch-bound on a GPU: hundreds of small kernels (three optimizers, a
24-layer flow, BatchNorm) each wait for the Python launcher. A CUDA graph records the kernels of one step on
static device buffers and replays them with one launch. What the step computes is unchanged:

* the first ``WARMUP`` steps of each phase run eagerly (on a side stream, as graph capture requires: lazy
  optimizer state, cuBLAS workspaces); they are real training steps, not discarded ones;
* the batch is copied into a static input; the metrics are copied out of the graph's static outputs;
* the default CUDA generator is graph-safe: each replay draws the noise the eager step would have drawn
  (its offset advances by the graph's total at every replay), so checkpoints' RNG states stay exact;
* Adam is built ``capturable`` (step counts on the device); a change of learning rate (``lr_halve_every``) or
  of phase (train/eval modes differ) is a new graph, captured after its own warm-up.

Not capturable, so refused by ``performance.use_cuda_graphs``: the fp16 GradScaler (it reads the overflow flag
on the host), multi-process training (collectives per update) and an objective with host-side per-step state
(``Objective.graph_blocker``: the cvae's annealed KL weight).

``capture=False`` runs the same bookkeeping (static buffers, warm-up, re-capture keys) eagerly: it is how the
CPU tests exercise this module. Exactness against the eager step on a real GPU is tests/training/test_speed_options.py's
CUDA-only test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from latentprior.objectives import Objective, Phase, run_updates

__all__ = ["WARMUP", "GraphedStep"]

WARMUP = 3  # eager steps of a phase before its capture (PyTorch's whole-network capture example uses 3)


@dataclass
class _Captured:
    key: tuple
    x: Tensor  # the static input (B, C, H, W)
    metrics: dict[str, Tensor]  # the static outputs
    replay: Callable[[], None]


class GraphedStep:
    """``step(x, phase)`` = ``run_updates(objective, x, phase)``, replayed from a CUDA graph once warm."""

    def __init__(self, objective: Objective, capture: bool = True) -> None:
        self.objective, self.capture = objective, capture
        self.graphs: dict[Phase, _Captured] = {}
        self.eager_steps: dict[tuple, int] = {}  # warm-up steps taken per key
        self.captures = 0  # how many graphs were captured (re-captures included)
        self._stream: torch.cuda.Stream | None = None  # the warm-up steps' side stream, made on first use

    def _key(self, x: Tensor, phase: Phase) -> tuple:
        lrs = tuple(pg["lr"] for opt in self.objective.optimizers.values() for pg in opt.param_groups)
        return phase, tuple(x.shape), x.stride(), lrs

    def __call__(self, x: Tensor, phase: Phase) -> dict[str, Tensor]:
        key = self._key(x, phase)
        graph = self.graphs.get(phase)
        if graph is None or graph.key != key:
            done = self.eager_steps.get(key, 0)
            if done < WARMUP:
                self.eager_steps[key] = done + 1
                with self._side_stream():
                    return run_updates(self.objective, x, phase)
            graph = self.graphs[phase] = self._record(key, x, phase)
        graph.x.copy_(x)
        graph.replay()
        return {k: v.clone() for k, v in graph.metrics.items()}  # the next replay overwrites the static outputs

    def _record(self, key: tuple, x: Tensor, phase: Phase) -> _Captured:
        self.captures += 1
        static_x = x.clone()  # keeps x's memory format (channels_last batches stay channels_last)
        if not self.capture:  # the same buffers, filled by an eager step per call
            out: dict[str, Tensor] = {}

            def replay() -> None:
                for k, v in run_updates(self.objective, static_x, phase).items():
                    out[k] = out[k].copy_(v) if k in out else v.clone()

            return _Captured(key, static_x, out, replay)
        # Capture records without running: the step is taken by the first replay, right after.
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            out = run_updates(self.objective, static_x, phase)
        return _Captured(key, static_x, out, g.replay)

    def _side_stream(self) -> contextlib.AbstractContextManager:
        if not self.capture:
            return contextlib.nullcontext()
        if self._stream is None:
            self._stream = torch.cuda.Stream()
        return _on_side_stream(self._stream)


@contextlib.contextmanager
def _on_side_stream(side: torch.cuda.Stream) -> Iterator[None]:
    """Run a block on ``side``, ordered after the current stream's work, and the current stream after it (so the
    block's outputs are safe to read, and its freed memory safe to reuse, on either stream)."""
    main = torch.cuda.current_stream()
    side.wait_stream(main)
    with torch.cuda.stream(side):
        yield
    main.wait_stream(side)

