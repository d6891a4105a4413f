"""A conditional model: sampling needs conditions and uses them; the perceptual term inside log p(x | y, z)."""

from __future__ import annotations

import pytest
import torch

from latentprior.nets.unet import UNetDecoder, UNetEncoder
from latentprior.priors.conditional_flow import conditional_flow
from tests.builders import COND_DIM, COND_SIDE, randomised

DIM, SIDE = COND_DIM, COND_SIDE


def _model(layers: int, **kwargs):
    from latentprior.models.autoencoder import LatentAutoencoder

    torch.manual_seed(0)
    prior = conditional_flow(DIM, layers, 16, cond_shape=(1, 28, 28), embed_dim=6, embed_width=4)
    return LatentAutoencoder(UNetEncoder(1, 28, 2 * DIM, width=0.125), UNetDecoder(DIM, 1, 28, width=0.125),
                             randomised(prior, 1), condition="downsample7", latent_dim=DIM, **kwargs)


def test_conditional_sampling_needs_conditions_and_uses_them():
    from latentprior.models.autoencoder import ConditionRequired

    model = _model(layers=2).eval()
    x = torch.rand(3, 1, 28, 28)
    y = model.condition(x)
    with pytest.raises(ConditionRequired, match="conditional"):
        model.sample(3)
    a = model.sample(3, generator=torch.Generator().manual_seed(0), y=y)
    b = model.sample(3, generator=torch.Generator().manual_seed(0), y=y)
    c = model.sample(3, generator=torch.Generator().manual_seed(1), y=y)
    assert torch.equal(a, b) and (a - c).abs().max() > 1e-6


def test_the_perceptual_loss_is_zero_for_identical_images_and_has_gradients(shared_dir):
    if shared_dir is None:
        pytest.skip("../shared is absent: no ImageNet VGG16 weights")
    from latentprior.models import PerceptualLoss

    loss = PerceptualLoss("vgg16", shared_dir / "weights" / "vgg16_features_imagenet.pth").double()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    assert torch.equal(loss(x, x.clone()), torch.zeros(2, dtype=torch.float64))
    g = (x + 0.1 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    value = loss(x, g)
    assert (value > 0).all()
    (grad,) = torch.autograd.grad(value.sum(), g)
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    # inside a conditional model it is part of log p(x | y, z)
    model = _model(layers=0, pixel_likelihood=False, perceptual=loss.float())
    out = model.log_px_given_z(x.float(), x.float())
    assert torch.equal(out, torch.zeros(2))


