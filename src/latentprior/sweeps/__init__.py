"""Sweeps: sweep files expanded into runs, executed on Ray (or in this process) with restart and retries.

    grid.py       sweep files -> SweepSpec -> Trial (one resolved config and name per run)
    checks.py     the whole sweep checked before anything starts (sample counts, changed runs)
    trial.py      one trial: train (resuming), then evaluate what is missing
    backends.py   where trials run: LocalExecutor, RayExecutor
    executor.py   run_sweep: the driver (the one writer of sweep.json, through latentprior.rundir)

>>> spec = load_sweep("configs/sweeps/fig3_mnist_cpu.yaml")
>>> [t.name for t in expand(spec)][:2]   # ['mnist-vae_flow_fixed_gamma-beta0-seed0', ...]
>>> run_sweep(spec, "runs/fig3_mnist_cpu")  # starts a local Ray; skips finished runs
"""

from latentprior.sweeps.backends import LocalExecutor, RayExecutor
from latentprior.sweeps.executor import run_sweep
from latentprior.sweeps.grid import Resources, SweepSpec, Trial, expand, load_sweep, sweep_from_dict
from latentprior.sweeps.trial import make_payload, run_trial

__all__ = ["SweepSpec", "Resources", "Trial", "load_sweep", "sweep_from_dict", "expand", "run_trial", "make_payload",
           "run_sweep", "LocalExecutor", "RayExecutor"]
