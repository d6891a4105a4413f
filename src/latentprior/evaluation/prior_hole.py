"""How much of the sample quality the prior loses: the FID of reconstructions, and the prior's density of encoded
test images.

At β = 0 the autoencoder never sees the prior, so a sample G(z), z ~ p(z), can be no better than the decoder's
reconstructions G(E(x)), and it is worse where p(z) puts mass that the aggregate posterior q(z) does not cover (the
"prior hole"). Two numbers separate the two:

* ``recon_fid``: the FID of the reconstructions of the first n test images, G(mean of q(z|x)), against the same
  reference set as the sample FID (the first n_ref test images) and through the same feature network; its
  reference side is the shared pass's. Sample FID / reconstruction FID near 1 means the prior matches q(z) as
  well as FID can tell; the gap above 1 is the prior's.
* ``prior_nll``: -log p(z) of one draw z ~ q(z|x) per test image (the encoder in eval mode), nats per latent vector:
  an estimate of the cross-entropy H(q(z), p(z)) on held-out images, comparable between priors over the same
  encoder (lower is a closer fit). For the two-stage VAE log p(z) is its importance-weighted estimate.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from latentprior.errors import UserError

from .features import extract
from .frechet import fid_from_statistics
from .inputs import EvalInputs

__all__ = ["reconstructed_images", "recon_fid_record", "prior_nll_record", "check_prior_density",
           "check_reconstruction", "NoPriorDensity", "TooFewTestImages", "RECONSTRUCTIONS"]

RECONSTRUCTIONS = "G(mean of q(z|x)) of the first n test images, decoder mean, quantised to 8 bits"


class NoPriorDensity(ValueError, UserError):
    """prior_nll was asked of a prior that can only be sampled."""


class TooFewTestImages(ValueError, UserError):
    """recon_fid was asked for more reconstructions than the test split has images."""


@torch.no_grad()
def reconstructed_images(model, images: Tensor, batch_size: int) -> Iterator[Tensor]:
    """G(mean of q(z|x)) of uint8 images (N, C, H, W), in batches (B, C, H, W) float in [0, 1]; eval mode (the
    model's mode restored after)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(device).float() / 255.0
            mean, _ = model.encode(x)
            yield model.decode(mean).float().clamp(0.0, 1.0)
    finally:
        model.train(was_training)


def check_reconstruction(x: EvalInputs) -> None:
    """recon_fid reconstructs test images: refused (before any work) when n exceeds the test split."""
    if x.eval.n > len(x.test):
        raise TooFewTestImages(f"recon_fid reconstructs n test images, but eval.n = {x.eval.n} exceeds the "
                             f"{len(x.test)} images of the test split; lower eval.n")


def recon_fid_record(x: EvalInputs) -> dict:
    """The FID of the first n test images' reconstructions against the sample FID's reference (module docstring)."""
    n = x.eval.n
    fake = extract(reconstructed_images(x.model, x.test.images[:n], x.eval.batch_size), x.extractor, total=n,
                   desc="reconstruction features", progress=x.progress)
    protocol = x.protocol | x.extractor.protocol() | {"samples": RECONSTRUCTIONS,
                                                       "reconstructed": f"first {n} test images in file order"}
    return {"value": fid_from_statistics(x.real.stats, fake.stats), "protocol": protocol}


def check_prior_density(x: EvalInputs) -> None:
    prior = x.model.prior
    if not getattr(prior, "has_density", False):
        raise NoPriorDensity(f"prior_nll needs a prior with a density; {type(prior).__name__} can only be sampled")


@torch.no_grad()
def prior_nll_record(x: EvalInputs) -> dict:
    """-log p(z) of one posterior draw per test image (module docstring): mean, its standard error, per dimension."""
    from latentprior.models.expost import encode_images

    z = encode_images(x.model, x.test.images, "sample", seed=x.eval.seed, batch_size=x.eval.batch_size)  # (N, D)
    # a two-stage prior's estimate draws its own noise: from the eval seed, the caller's stream left as it was
    with torch.random.fork_rng(devices=[z.device] if z.device.type == "cuda" else []):
        torch.manual_seed(x.eval.seed)
        nll = -torch.cat([x.model.prior.log_prob(z[s:s + x.eval.batch_size]).double().cpu()
                          for s in range(0, len(z), x.eval.batch_size)])  # (N,)
    d = z.shape[1]
    return {"value": nll.mean().item(), "std_err": (nll.std() / nll.numel() ** 0.5).item(),
            "per_dim": nll.mean().item() / d,
            "protocol": {"dataset": x.protocol["dataset"], "split": "test", "n_test": int(nll.numel()),
                         "seed": x.eval.seed, "latent_dim": d, "units": "nats per latent vector",
                         "latents": "one draw z ~ q(z|x) per test image, encoder in eval mode",
                         "prior": x.prior_name or "the run's own"}}
