"""Speed options of the training loop: autocast, gradient scaling, channels_last, torch.compile, Adam's
implementation, CUDA graphs.

None of them changes the algorithm. ``train.amp`` changes the arithmetic of the forward passes
(tests/training/test_performance.py bounds the first steps' losses against fp32); ``train.compile``,
``train.channels_last`` and ``train.adam_impl`` change only how kernels are chosen and laid out, and so the
rounding: two runs that differ in them drift apart (Adam amplifies last-bit differences in near-zero gradient
elements: 200 steps of configs/cpu/mnist_vae_flow.yaml put fused Adam 6e-3 and channels_last 8e-3 apart in the
loss), while each is exact against itself, interrupted and resumed or not (docs/reproducibility.md).

Defaults, measured on the CPU with one thread (benchmarks/vs_pythae.py, benchmarks/throughput.py):

* ``adam_impl: fused``: one in-place kernel per parameter, where the per-parameter loop makes several
  weight-sized temporaries per step (for the paper net's two 6.4M-element layers, fresh 25 MB buffers each
  time). With channels_last it makes the paper's MNIST step 1.25-1.3x faster than the loop and NCHW
  (benchmarks/throughput.py, variant ``loopadam+nchw``). A run created before fused was the default says
  ``auto`` in its config, which keeps its meaning there: fused on CUDA, the loop elsewhere.
  Such a run keeps ``auto`` when resumed, as every run keeps its ``adam_impl`` and ``channels_last``
  (``TrainConfig.kept_from``, applied by training/run.py's ``open_run``).
* ``channels_last: true``: NHWC convolutions (oneDNN's preferred layout) made every net's CPU step faster:
  infogan 1.02-1.04x, conv4 1.1x at width 1 and 1.2x at the CPU presets' 0.125, resnet 1.7x, unet 1.3x. Runs
  created before record ``false`` and keep it.
* ``compile: false``: 8e-6 apart from eager on the first 3 losses of the CPU preset, but about 2 minutes of
  compilation on 2 busy cores.

The same defaults hold on CUDA, where ``cuda_graphs: auto`` also captures the whole step as a CUDA graph and
replays it (training/cuda_graphs.py); none of them has been timed on a GPU by this project yet
(benchmarks/throughput.py's GPU table does).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from latentprior.config import ConfigError, TrainConfig
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.objectives import AdamImpl, StepOptions

__all__ = ["AMP_DTYPES", "step_options", "prepare_model", "prepare_batch", "compile_model", "use_cuda_graphs",
           "adam_impl"]

AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def step_options(tc: TrainConfig, device: torch.device,
                 reduce_gradients: Callable[[list[nn.Parameter]], None] | None = None,
                 graphs: bool = False) -> StepOptions:
    """The :class:`StepOptions` for ``train.amp`` on ``device``; fp16 gets a GradScaler, bf16 needs none
    (its exponent range is fp32's, so gradients do not underflow). ``graphs``: the step will be captured."""
    dtype = AMP_DTYPES[tc.amp]
    scaler = torch.amp.GradScaler(device.type) if dtype is torch.float16 else None
    return StepOptions(autocast=dtype, device_type=device.type, scaler=scaler, reduce_gradients=reduce_gradients,
                       autocast_cache=not graphs)


def use_cuda_graphs(tc: TrainConfig, device: torch.device, multi_process: bool,
                    objective_blocker: str | None = None) -> bool:
    """Whether the step is captured as a CUDA graph (``train.cuda_graphs``): ``auto`` wherever it can be.
    ``objective_blocker``: the objective's ``graph_blocker`` (why its step cannot be replayed), if any."""
    blockers = [why for bad, why in ((device.type != "cuda", f"the device is {device.type}, not CUDA"),
                                     (tc.amp == "fp16", "train.amp fp16's GradScaler reads overflow on the host"),
                                     (multi_process, "multi-process training averages gradients per update"),
                                     (objective_blocker is not None, objective_blocker))
                if bad]
    if tc.cuda_graphs == "on" and blockers:
        raise ConfigError(f"train.cuda_graphs on cannot capture this run: {blockers[0]}; use auto or off")
    return tc.cuda_graphs != "off" and not blockers


def adam_impl(tc: TrainConfig, device: torch.device, graphs: bool) -> AdamImpl:
    """Adam's implementation for ``train.adam_impl`` on ``device`` (see the module docstring for the default);
    ``graphs``: the step will be captured, which needs step counts on the device (``capturable``)."""
    impl = tc.adam_impl
    if impl == "auto":  # the meaning it had when runs made before fused was the default recorded it
        impl = "fused" if device.type == "cuda" else "loop"
    return AdamImpl(foreach=impl == "foreach", fused=impl == "fused", capturable=graphs)


def compile_model(model: LatentAutoencoder) -> None:
    """``torch.compile`` the networks in place with ``nn.Module.compile``, which keeps state_dict keys unchanged
    (wrapping with ``torch.compile(module)`` would prefix them with ``_orig_mod.`` and break checkpoints).

    The objectives call the prior through ``log_prob``/``sample``, not ``forward``, so the prior's own
    sub-networks (each flow transform, the MLP) are compiled instead of the prior.
    """
    for net in (model.encoder, model.decoder, model.discriminator):
        if net is not None:
            net.compile()
    for child in model.prior.children():
        if isinstance(child, nn.ModuleList | nn.ModuleDict):
            for sub in (child.values() if isinstance(child, nn.ModuleDict) else child):
                sub.compile()
        else:
            child.compile()


def prepare_model(model: LatentAutoencoder, tc: TrainConfig) -> LatentAutoencoder:
    """Apply ``train.channels_last`` and ``train.compile`` to a model already on its device (in place)."""
    if tc.channels_last:
        # Only 4-D weights change layout; the fully connected layers and the flow are untouched.
        model.to(memory_format=torch.channels_last)
    if tc.compile:
        compile_model(model)
    return model


def prepare_batch(x: Tensor, tc: TrainConfig) -> Tensor:
    """A batch (B, C, H, W) in the memory format the model was prepared for."""
    return x.contiguous(memory_format=torch.channels_last) if tc.channels_last else x
