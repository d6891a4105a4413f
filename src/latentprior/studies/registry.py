"""The experiment registry: ``latentprior experiment NAME FILE --out DIR`` for every entry of :data:`EXPERIMENTS`.

An experiment reproduces one table or figure of the paper end to end: it reads a file describing its models
(``load(path)``, one-line ``ConfigError`` on bad input), then trains or reuses them, evaluates them and writes
its tables and figures into ``DIR`` (``run(spec, out, data_dir=, weights_dir=, cache_dir=, device=,
progress=)``, returning a JSON-able summary). An experiment with ``seeds=True`` also takes ``seeds=`` (a tuple
of seeds, ``--seeds``): replicates over seeds and verdicts on the paper's claims (studies/replicates.py,
studies/verdicts.py). Adding one is one entry here; the command line lists them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Experiment", "EXPERIMENTS"]


@dataclass(frozen=True)
class Experiment:
    """One registered experiment: where its ``load`` and ``run`` functions live, and a one-line summary.

    ``module`` is imported only when the experiment runs, so listing the commands imports no experiment.
    """

    module: str
    load_name: str
    run_name: str
    summary: str
    example: str = ""
    seeds: bool = False  # run() takes seeds= (replicates over seeds, mean ± std, claim verdicts)

    def load(self, path: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.load_name)(path)

    @property
    def run(self) -> Callable[..., dict[str, Any]]:
        return getattr(importlib.import_module(self.module), self.run_name)


EXPERIMENTS: dict[str, Experiment] = {
    "disentanglement": Experiment(
        "latentprior.studies.disentanglement", "load_study", "run_disentanglement",
        "Table 1 and Figs. 6-8: separability, PPL and FID of VAE, beta-VAE, FactorVAE and flow priors "
        "(z0 and zT); PCA feature discovery; rate of change along attribute directions",
        "configs/disentanglement/mnist.yaml", seeds=True),
    "conditional": Experiment(
        "latentprior.studies.translation", "load_task", "run_conditional",
        "Table 2: image-to-image diversity (conditional LPIPS) and quality (FID, reconstruction) of the "
        "Variational U-Net objective vs. a conditional flow prior without the KL term",
        "configs/conditional/mnist_downsample7_cpu.yaml", seeds=True),
    "priors": Experiment(
        "latentprior.studies.priors", "load_prior_study", "run_priors",
        "the prior hole: sample FID vs reconstruction FID, precision/recall and test NLL of every prior family "
        "(joint and ex post: RealNVP, Glow, MAF, NSF, GMM, VampPrior, two-stage VAE) against beta, latent size, "
        "sampling temperature", "configs/priors/mnist_cpu.yaml"),
}
