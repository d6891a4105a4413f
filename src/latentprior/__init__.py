"""latentprior: generative autoencoders with learned latent priors, trained with the β-bilevel objective.

The stable public names are listed in ``__all__`` and documented in docs/api.md. They are imported on first use
(``latentprior.Trainer`` imports the training code then), so ``import latentprior`` imports no torch and the
torch-free parts (``latentprior.reports``, ``latentprior.rundir``) stay cheap.

>>> import latentprior as lp
>>> model = lp.LatentAutoencoder(my_encoder, my_decoder, lp.StandardNormal(16), latent_dim=16)
>>> lp.Trainer("runs/mine", objective="vae", train={"epochs": 5}).fit(model, images)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# public name -> the module that defines it (imported when the name is first read)
_HOME = {
    # the Python API
    "Trainer": "api", "load": "api", "evaluate": "api",
    # configs
    "Config": "config", "DataConfig": "config", "NetConfig": "config", "PriorConfig": "config",
    "ModelConfig": "config", "ObjectiveConfig": "config", "TrainConfig": "config", "EvalConfig": "config",
    "ExPostPriorConfig": "config", "expost_config": "config", "load_config": "config",
    # models, priors, objectives
    "LatentAutoencoder": "models", "build_model": "models", "load_run": "models",
    "allow_factory_modules": "models.factories", "use_run_prior": "models.expost",
    # priors fitted into a finished run
    "fit_run_prior": "training.expost",
    "Prior": "priors", "Transform": "priors", "StandardNormal": "priors", "build_prior": "priors",
    "build_discriminator": "priors",
    "Objective": "objectives", "build_objective": "objectives", "run_updates": "objectives",
    # data
    "ImageDataset": "data", "load_dataset": "data", "load_image_folder": "data", "as_image_dataset": "data",
    # the run machinery the CLI uses
    "train": "training", "open_run": "training", "save_image_grid": "sampling",
    "evaluate_run": "evaluation.runner", "METRICS": "evaluation.registry",
    # errors
    "UserError": "errors", "ConfigError": "config", "DataError": "data", "CheckpointError": "models.load",
}

__all__ = ["__version__", *_HOME]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'latentprior' has no attribute '{name}'")
    return getattr(importlib.import_module(f"latentprior.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
