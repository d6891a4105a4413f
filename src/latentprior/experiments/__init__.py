"""Experiments: sweep files expanded into runs, executed on Ray with restart and retries (figures and reports of
finished runs are in ``latentprior.reports``).

>>> spec = load_sweep("configs/sweeps/fig3_mnist_cpu.yaml")
>>> [t.name for t in expand(spec)][:2]   # ['mnist-vae_flow_fixed_gamma-beta0-seed0', ...]
>>> run_sweep(spec, "runs/fig3_mnist_cpu")  # starts a local Ray; skips finished runs
"""

from latentprior.experiments.backends import LocalExecutor, RayExecutor
from latentprior.experiments.executor import run_sweep
from latentprior.experiments.grid import Resources, SweepSpec, Trial, expand, load_sweep, sweep_from_dict
from latentprior.experiments.state import SweepState, run_is_done
from latentprior.experiments.trial import make_payload, run_trial

__all__ = ["SweepSpec", "Resources", "Trial", "load_sweep", "sweep_from_dict", "expand", "SweepState", "run_is_done",
           "run_trial", "make_payload", "run_sweep", "LocalExecutor", "RayExecutor"]
