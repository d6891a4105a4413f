"""Ex-post priors on one run's latents: how well does each density fit the encoded test images?

Encodes a finished run's train and test images (posterior means), fits every ex-post prior of
``latentprior.priors.expost`` on the train latents, and reports the mean log-density of the test latents (nats per
latent vector; higher is a closer match of q(z), i.e. fewer prior holes) and the fit time, beside the run's own
prior and two baselines (N(0, I), and the moment-matched Gaussian). The two-stage VAE's figure is its
importance-weighted estimate (a lower bound in expectation).

    python benchmarks/expost_priors.py RUN_DIR [--epochs 30] [--components 10]
    python benchmarks/expost_priors.py --train-digits OUT_DIR     # first train a small β = 0 run on digits
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from latentprior.config import config_from_dict
from latentprior.data import load_dataset
from latentprior.models.load import load_run
from latentprior.priors import (
    AutoregressivePrior,
    GlowPrior,
    StandardNormal,
    fit_gmm,
    fit_prior,
    fit_two_stage_vae,
)
from latentprior.training import train


def train_digits(out: Path) -> None:
    """A small β = 0 VAE with a RealNVP prior on scikit-learn's digits (1,500 train images), 40 epochs."""
    cfg = config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.25}, "prior": {"kind": "realnvp", "layers": 4, "hidden": 64},
        "model": {"latent_dim": 8, "learn_gamma": True}, "objective": {"kind": "vae", "beta": 0.0, "lr": 1e-3},
        "train": {"epochs": 40, "prior_epochs": 10, "batch_size": 100, "progress": False, "device": "cpu"},
    })
    train(cfg, out)


@torch.no_grad()
def latents(model, name: str, split: str) -> torch.Tensor:
    ds = load_dataset(name, split)
    model.eval()
    out = [model.encode(ds.batch(idx))[0] for idx in torch.arange(len(ds)).split(500)]
    return torch.cat(out).double()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--train-digits", action="store_true", help="train the small digits run into RUN_DIR first")
    ap.add_argument("--epochs", type=int, default=30, help="maximum-likelihood epochs of the flows")
    ap.add_argument("--components", type=int, default=10, help="GMM components (RAE: 10)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.train_digits:
        train_digits(args.run_dir)
    model, cfg = load_run(args.run_dir, device="cpu")
    z_train, z_test = latents(model, cfg.data.name, "train"), latents(model, cfg.data.name, "test")
    d = z_train.shape[1]
    print(f"{cfg.data.name}: {len(z_train)} train / {len(z_test)} test latents, D = {d}, "
          f"run prior {cfg.prior.kind}, beta {cfg.objective.beta:g}")
    rows: list[tuple[str, float, float]] = []

    def score(name: str, fit) -> None:
        start = time.perf_counter()
        prior = fit()
        seconds = time.perf_counter() - start
        torch.manual_seed(0)
        with torch.no_grad():
            ll = float(prior.log_prob(z_test).mean())
        rows.append((name, ll, seconds))

    mvn = torch.distributions.MultivariateNormal(z_train.mean(0), torch.cov(z_train.T))
    rows.append(("N(0, I)", float(StandardNormal(d).double().log_prob(z_test).mean()), 0.0))
    rows.append(("moment-matched Gaussian", float(mvn.log_prob(z_test).mean()), 0.0))
    with torch.no_grad():
        rows.append((f"run's own prior ({cfg.prior.kind})",
                     float(model.prior.double().log_prob(z_test).mean()) if model.prior.has_density else float("nan"),
                     0.0))
    score(f"GMM full, K={args.components} (EM)", lambda: fit_gmm(z_train, args.components, "full"))
    score(f"GMM diagonal, K={args.components} (EM)", lambda: fit_gmm(z_train, args.components, "diagonal"))
    for name, make in (("Glow 4 steps", lambda: GlowPrior(d, 4, 64)),
                       ("MAF 4 layers", lambda: AutoregressivePrior("maf", d, 4, 64)),
                       ("NSF 4 layers", lambda: AutoregressivePrior("nsf", d, 4, 64, bins=8))):
        def fit(make=make):
            torch.manual_seed(0)
            prior = make().double()
            fit_prior(prior, z_train, epochs=args.epochs, batch_size=100, lr=1e-3)
            return prior.eval()
        score(f"{name}, {args.epochs} epochs (ML)", fit)
    score("two-stage VAE, 100 epochs", lambda: fit_two_stage_vae(z_train, hidden=128, epochs=100, batch_size=100))
    print(f"| {'prior':40s} | test log p(z) | fit s |\n|{'-' * 42}|---------------|-------|")
    for name, ll, seconds in rows:
        print(f"| {name:40s} | {ll:13.2f} | {seconds:5.1f} |")


if __name__ == "__main__":
    main()
