"""The one place optimizers are built: Adam for every parameter group of every objective.

``build_optimizer(params, lr, betas, impl)`` is called for each group an objective declares
(:meth:`Objective.add_group`), FactorVAE's TC discriminator and the conditional objective's groups included.
``impl`` says how the update is computed, never what it is (training/performance.py picks it from
``train.adam_impl``):

* loop (all flags off): one small kernel per operation per parameter, temporaries allocated per step;
* foreach: the same operations batched over the group's tensors (still with temporaries);
* fused: one kernel per parameter that reads the gradient and writes the parameter and both moments in place,
  on the CPU and on CUDA. Same algorithm, different summation order in the last bit, so runs with and without
  it drift apart like any two rounding choices; a run is exact against itself with either;
* capturable: step counts and bias corrections kept on the parameter's device, as CUDA graph capture needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["AdamImpl", "build_optimizer", "keep_impl"]


@dataclass(frozen=True)
class AdamImpl:
    """Adam's implementation flags; all off is the per-parameter loop."""

    foreach: bool = False
    fused: bool = False
    capturable: bool = False

    def __post_init__(self) -> None:
        if self.foreach and self.fused:
            raise ValueError("AdamImpl: foreach and fused exclude each other")

    def flags(self) -> dict[str, bool]:
        return {"foreach": self.foreach, "fused": self.fused, "capturable": self.capturable}


def build_optimizer(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float],
                    impl: AdamImpl = AdamImpl()) -> torch.optim.Adam:
    """Adam over ``params`` (one parameter group) with learning rate ``lr`` and ``betas``; eps and the absence
    of weight decay are torch's defaults, as in the paper's setup. The flags are always passed explicitly, so
    that torch's own per-device defaults never decide them."""
    return torch.optim.Adam(list(params), lr=lr, betas=betas, **impl.flags())


def keep_impl(opt: torch.optim.Optimizer, impl: AdamImpl) -> None:
    """After ``opt.load_state_dict``: implementation flags are this process's choice, not the checkpoint's. A
    loaded state carries the saving process's flags, and its step counts on the host unless that one was fused
    or capturable; both are set back to ``impl``'s."""
    for pg in opt.param_groups:
        pg.update(impl.flags())
        on_device = impl.fused or impl.capturable  # these keep the step count beside the parameter
        for p in pg["params"]:
            st = opt.state.get(p, {})
            if "step" in st:
                st["step"] = st["step"].to(device=p.device if on_device else "cpu", dtype=torch.float32)
