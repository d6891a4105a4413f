"""Your own encoder and decoder with latentprior's whole run machinery: trained, resumed, sampled and scored.

    python examples/custom_networks.py --out runs/custom_networks          # ~1 min on a laptop CPU
    python examples/custom_networks.py --out /tmp/cn --tiny                # a few steps (what the tests run)

The run directory is the one `latentprior train` writes: checkpoints (verified, exactly resumable), metrics.jsonl,
TensorBoard events (tb/), previews (samples/) and eval records (eval/).
"""

import argparse

import torch
from torch import nn

import latentprior as lp

D = 16  # latent dimension


class Encoder(nn.Module):  # x (B, 1, 28, 28) -> (B, 2D): the mean and raw variance of q(z|x)
    def __init__(self, hidden=256):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * D))

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):  # z (B, D) -> G(z) (B, 1, 28, 28) in [0, 1]
    def __init__(self, hidden=256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, hidden), nn.ReLU(), nn.Linear(hidden, 784), nn.Sigmoid())

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)


def make_model():
    torch.manual_seed(0)
    prior = lp.build_prior("realnvp", D, layers=4, hidden=128)  # or lp.StandardNormal(D), or your own Prior
    return lp.LatentAutoencoder(Encoder(), Decoder(), prior, latent_dim=D)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--tiny", action="store_true", help="a few steps and a small FID (for tests)")
    args = p.parse_args(argv)

    data = lp.load_dataset("digits", "train")  # any tensor, array or torch Dataset of images works too
    epochs, n = (0.2, 20) if args.tiny else (30, 297)
    trainer = lp.Trainer(args.out, objective=lp.ObjectiveConfig(kind="vae", beta=1.0, lr=1e-3),
                         train=lp.TrainConfig(epochs=epochs, prior_epochs=epochs / 2, batch_size=100,
                                              checkpoint_every=2 if args.tiny else 100, progress=False))
    half = trainer.fit(make_model(), data, max_steps=2 if args.tiny else 200)  # stop early ...
    print(f"stopped at step {half['step']} of {half['total_steps']}")
    model = make_model()  # ... and resume, as a new process would: a fresh model, the same call
    done = trainer.fit(model, data)
    print(f"resumed to step {done['step']}; last losses", {k: round(v, 3) for k, v in done["metrics"].items()
                                                           if k.endswith("loss")})

    lp.save_image_grid(model.sample(64, generator=torch.Generator().manual_seed(0)), f"{args.out}/my_samples.png")
    scores = trainer.evaluate(["fid", "nll"], n=n, nll_k=10 if args.tiny else 100, progress=False)
    print({m: round(r["value"], 3) for m, r in scores.items()})

    same = lp.load(args.out, make_model())  # the weights back into your modules, e.g. in another script
    print("reloaded:", all(torch.equal(a, b) for a, b in zip(same.state_dict().values(),
                                                             model.state_dict().values(), strict=True)))


if __name__ == "__main__":
    main()
