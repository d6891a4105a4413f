"""Bilevel objectives: ordered updates, each with its own loss, parameter group and optimizer."""

from latentprior.config import Config
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.objectives.aae import AAEBilevel
from latentprior.objectives.base import Objective, Phase, StepOptions, Update, run_updates
from latentprior.objectives.cvae import ConditionalBilevel
from latentprior.objectives.factorvae import FactorVAE
from latentprior.objectives.vae import VAEBilevel

__all__ = ["Objective", "Update", "Phase", "StepOptions", "run_updates", "VAEBilevel", "AAEBilevel", "FactorVAE",
           "ConditionalBilevel", "OBJECTIVES", "build_objective"]

OBJECTIVES: dict[str, type[Objective]] = {"vae": VAEBilevel, "aae": AAEBilevel, "factorvae": FactorVAE,
                                           "cvae": ConditionalBilevel}


def build_objective(cfg: Config, model: LatentAutoencoder) -> Objective:
    """The objective named by ``cfg.objective.kind`` with one optimizer per parameter group."""
    try:
        cls = OBJECTIVES[cfg.objective.kind]
    except KeyError:
        raise ValueError(f"unknown objective '{cfg.objective.kind}'; choose one of {sorted(OBJECTIVES)}") from None
    return cls(model, cfg.objective)
