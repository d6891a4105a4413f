"""Bilevel objectives: ordered updates, each with its own loss, parameter group and optimizer."""

from latentprior.config import Config
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.objectives.aae import AAEBilevel
from latentprior.objectives.base import Objective, Phase, StepOptions, Update, run_updates
from latentprior.objectives.cvae import ConditionalBilevel
from latentprior.objectives.factorvae import FactorVAE
from latentprior.objectives.optim import AdamImpl, build_optimizer
from latentprior.objectives.vae import VAEBilevel

__all__ = ["Objective", "Update", "Phase", "StepOptions", "run_updates", "VAEBilevel", "AAEBilevel", "FactorVAE",
           "ConditionalBilevel", "OBJECTIVES", "objective_class", "build_objective", "AdamImpl", "build_optimizer"]

OBJECTIVES: dict[str, type[Objective]] = {"vae": VAEBilevel, "aae": AAEBilevel, "factorvae": FactorVAE,
                                           "cvae": ConditionalBilevel}


def objective_class(cfg: Config) -> type[Objective]:
    """The class of ``cfg.objective.kind`` (its ``graph_blocker`` is read before the objective is built)."""
    try:
        return OBJECTIVES[cfg.objective.kind]
    except KeyError:
        raise ValueError(f"unknown objective '{cfg.objective.kind}'; choose one of {sorted(OBJECTIVES)}") from None


def build_objective(cfg: Config, model: LatentAutoencoder, *, adam_impl: AdamImpl | None = None,
                    step_options: StepOptions | None = None) -> Objective:
    """The objective named by ``cfg.objective.kind`` with one Adam per parameter group, executed with
    ``adam_impl`` and ``step_options`` (default: the per-parameter loop, plain fp32, one process)."""
    objective = objective_class(cfg)(model, cfg.objective)
    objective.configure(adam_impl or AdamImpl(), step_options or StepOptions())
    return objective
