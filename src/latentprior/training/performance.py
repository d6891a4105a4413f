"""Speed options of the training loop: autocast, gradient scaling, channels_last, torch.compile.

None of them changes the algorithm. ``train.amp`` changes the arithmetic of the forward passes
(tests/test_performance.py bounds the first steps' losses against fp32); ``train.compile`` and
``train.channels_last`` change only how kernels are chosen and laid out.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from latentprior.config import TrainConfig
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.objectives.base import StepOptions

__all__ = ["AMP_DTYPES", "step_options", "prepare_model", "prepare_batch", "compile_model"]

AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def step_options(tc: TrainConfig, device: torch.device,
                 reduce_gradients: Callable[[list[nn.Parameter]], None] | None = None) -> StepOptions:
    """The :class:`StepOptions` for ``train.amp`` on ``device``; fp16 gets a GradScaler, bf16 needs none
    (its exponent range is fp32's, so gradients do not underflow)."""
    dtype = AMP_DTYPES[tc.amp]
    scaler = torch.amp.GradScaler(device.type) if dtype is torch.float16 else None
    return StepOptions(autocast=dtype, device_type=device.type, scaler=scaler, reduce_gradients=reduce_gradients)


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
