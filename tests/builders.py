"""Small configs and models that tests of several packages build alike (one definition each)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from latentprior.config import Config, config_from_dict

__all__ = ["COND_DIM", "COND_SIDE", "TINY", "PoolFeatures", "conditional_config", "randomised", "tiny_spec",
           "tiny_vae_config"]

ROOT = Path(__file__).resolve().parents[1]

COND_DIM, COND_SIDE = 4, 8  # the conditional tests' latent size and condition side


def tiny_vae_config(sections=None, **train) -> Config:
    """A VAE with a small RealNVP on the digits data: a few steps per epoch, logs and checkpoints every few steps."""
    return config_from_dict({
        "data": {"name": "digits"},
        "net": {"width": 0.0625},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 32},
        "model": {"latent_dim": 8},
        "objective": {"kind": "vae", "beta": 0.0, "lr": 1e-3},
        **(sections or {}),
        "train": {"epochs": 1, "prior_epochs": 0.5, "batch_size": 100, "log_every": 1, "checkpoint_every": 4,
                  "progress": False, **train},
    })


def conditional_config(**sections) -> Config:
    """An image-to-image (downsample7) cvae with a small conditional RealNVP; ``sections`` update its sections."""
    base = {"data": {"name": "digits", "condition": "downsample7"}, "net": {"arch": "unet", "width": 0.125},
            "prior": {"kind": "realnvp", "layers": 2, "hidden": 16, "cond_embed": 8},
            "model": {"latent_dim": COND_DIM, "learn_gamma": True},
            "objective": {"kind": "cvae", "beta": 1.0, "lr": 3e-4, "kl_anneal_start": 1, "kl_anneal_end": 4},
            "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "log_every": 1, "checkpoint_every": 2,
                      "progress": False}}
    for k, v in sections.items():
        base[k] = base.get(k, {}) | v
    return config_from_dict(base)


def randomised(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter drawn at random: zero-initialised last layers would make couplings trivial maps and a
    conditional base's mean independent of the condition, so invertibility and dependence on c would hold
    vacuously."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


# A sweep of tiny VAE runs on the digits data.
TINY = {"data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4}, "objective": {"kind": "vae", "lr": 1e-3},
        "train": {"epochs": 0.4, "prior_epochs": 0, "batch_size": 100, "log_every": 1, "checkpoint_every": 1,
                  "progress": False}}  # digits: 1500 training images -> 15 steps per epoch -> 6 steps


def tiny_spec(grid=None, models=None, **extra):
    """A sweep of :data:`TINY` over beta and seed (or ``grid``), FID at n = 10, one trial at a time."""
    data = {"name": "tiny", "base": TINY, "grid": grid or {"objective.beta": [0, 1], "train.seed": [0, 1]},
            "eval": {"metrics": ["fid"], "n": 10}, "resources": {"threads": 1, "max_concurrent": 1}, **extra}
    if models is not None:
        data["models"] = models
    from latentprior.sweeps.grid import sweep_from_dict

    return sweep_from_dict(data, ROOT / "configs")


class PoolFeatures:
    """A cheap deterministic stand-in for the Inception network (4x4 average-pooled pixels)."""

    def __call__(self, images):
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.clamp(0, 1)
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)

    def protocol(self):
        return {"network": "pool-test-features", "weights_sha1": "0" * 40}
