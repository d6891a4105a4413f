"""Your own prior: a class following latentprior.priors.Prior, trained by the bilevel objective like ours, and
named in a config by import path so that the command line can rebuild the run.

    python examples/custom_prior.py --out runs/custom_prior          # ~1 min on a laptop CPU
    python examples/custom_prior.py --out /tmp/cp --tiny             # a few steps (what the tests run)

and then, from this folder (the run names `custom_prior:LaplacePrior`, which must be importable and allowed):

    PYTHONPATH=examples LATENTPRIOR_FACTORY_MODULES=custom_prior latentprior sample runs/custom_prior --out s.png
"""

import argparse
import math

import torch
from torch import nn

import latentprior as lp


class LaplacePrior(lp.Prior):
    """p(z) = prod_i Laplace(z_i; mu_i, b_i) with learned mu and log b: z (B, D) -> log p (B,)."""

    def __init__(self, dim: int):
        super().__init__(dim)
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def log_prob(self, z, c=None):
        return (-(z - self.loc).abs() / self.log_scale.exp() - self.log_scale - math.log(2)).sum(-1)

    def sample(self, n, c=None, generator=None, temperature=1.0):
        u = self.uniform_noise(n * self.dim, generator).view(n, self.dim) - 0.5  # U(-1/2, 1/2), from `generator`
        deviation = -u.sign() * torch.log1p(-2 * u.abs()) * self.log_scale.exp()  # the inverse CDF
        return self.loc + temperature * deviation  # temperature scales the noise, never the density


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--tiny", action="store_true", help="a few steps (for tests)")
    args = p.parse_args(argv)

    lp.allow_factory_modules("custom_prior")  # this file, importable as `custom_prior` when run from here
    cfg = lp.Config(
        data=lp.DataConfig(name="digits"),
        net=lp.NetConfig(arch="conv4", width=0.125),
        prior=lp.PriorConfig(kind="custom", factory="custom_prior:LaplacePrior"),  # called as LaplacePrior(dim=D)
        model=lp.ModelConfig(latent_dim=8),
        objective=lp.ObjectiveConfig(kind="vae", beta=1.0, lr=1e-3),
        # the prior-only epochs fit the prior to the frozen encoder's codes, after the joint ones
        train=lp.TrainConfig(epochs=0.2 if args.tiny else 10, prior_epochs=0.2 if args.tiny else 5, batch_size=100,
                             progress=False),
    )
    trainer = lp.Trainer(args.out, cfg)
    trainer.fit()
    prior = trainer.model.prior
    print("learned Laplace scales b:", [round(b, 3) for b in prior.log_scale.exp().tolist()])
    print("samples:", lp.save_image_grid(trainer.model.sample(64), f"{args.out}/laplace_samples.png"))
    print("NLL", round(trainer.evaluate(["nll"], n=20 if args.tiny else 297, nll_k=10, progress=False)["nll"]["value"],
                       2), "nats")


if __name__ == "__main__":
    main()
