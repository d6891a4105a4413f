"""Inpainting and colourisation conditions: deterministic, shape-preserving, and hiding exactly what they say."""

from __future__ import annotations

import pytest
import torch

from latentprior.config import ConfigError, config_from_dict
from latentprior.data.conditions import CONDITIONS, condition_fn
from latentprior.data.masks import FILL, grayscale, image_hash, top_half, window14, window_origin

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64)]


def _images(n: int, shape, seed: int = 0) -> torch.Tensor:
    """k / 255 pixels, as batches are: never exactly FILL = 0.5, so hidden pixels can be told from shown ones."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g).float() / 255


@pytest.mark.parametrize(("name", "shape"), [(n, s) for n in ("top_half", "window14", "grayscale") for s in SHAPES
                                             if n != "grayscale" or s[0] == 3])  # grayscale: colour images only
def test_conditions_are_deterministic_per_image_and_keep_the_shape(name, shape):
    fn = condition_fn(name)
    x = _images(40, shape)
    y = fn(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(fn(x.clone()), y)  # the same image, the same condition
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    assert torch.equal(fn(x[perm]), y[perm])  # each image's condition is its own, whatever the batch
    assert torch.equal(fn(x[:3]), y[:3])
    assert not torch.equal(y, x)


def test_top_half_shows_the_top_and_fills_the_bottom():
    x = _images(5, (1, 28, 28))
    y = top_half(x)
    assert torch.equal(y[..., :14, :], x[..., :14, :])
    assert (y[..., 14:, :] == FILL).all()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_window14_fills_exactly_one_14x14_square_in_every_channel(shape):
    x = _images(300, shape)
    y = window14(x)
    r, c = window_origin(x)
    c_, h, w = shape
    for i in range(x.shape[0]):
        box = torch.zeros(h, w, dtype=torch.bool)
        box[r[i]:r[i] + 14, c[i]:c[i] + 14] = True
        assert box.sum() == 14 * 14  # inside the image
        assert torch.equal(y[i] == FILL, box.expand(c_, h, w))
        assert torch.equal(y[i][~box.expand(c_, h, w)], x[i][~box.expand(c_, h, w)])
    # the hash spreads windows over every row and column the image allows
    assert set(r.tolist()) == set(range(h - 13)) and set(c.tolist()) == set(range(w - 13))
    assert len(set(zip(r.tolist(), c.tolist(), strict=True))) > 100


def test_the_window_hash_is_the_integer_formula():
    x = _images(3, (3, 32, 32), seed=7)
    p = 2**31 - 1
    for i in range(3):
        q = [round(v * 255) for v in x[i].flatten().tolist()]
        want = sum(qk * ((k + 1) * 2654435761 % p) for k, qk in enumerate(q)) % p  # Python's exact integers
        assert image_hash(x[i:i + 1]).item() == want
    # 8-bit values: float64 or a rounding error below half a level give the same window
    assert torch.equal(image_hash(x.double()), image_hash(x))
    assert torch.equal(image_hash((x + 1e-4).clamp(0, 1)), image_hash(x))


def test_grayscale_is_the_luma_in_every_channel():
    x = _images(4, (3, 32, 32))
    y = grayscale(x)
    want = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # ITU-R BT.601
    for ch in range(3):
        torch.testing.assert_close(y[:, ch], want)
    with pytest.raises(ValueError, match="needs colour images"):
        grayscale(_images(2, (1, 28, 28)))


def test_the_config_knows_the_conditions_and_keeps_grayscale_to_colour_data():
    assert {"top_half", "window14", "grayscale"} <= set(CONDITIONS)
    base = {"net": {"arch": "unet"}, "objective": {"kind": "cvae"}}
    for name, data in (("top_half", "mnist"), ("window14", "fashion_mnist"), ("grayscale", "cifar10")):
        assert config_from_dict(base | {"data": {"name": data, "condition": name}}).data.condition == name
    with pytest.raises(ConfigError, match="^data.condition 'grayscale' needs colour images"):
        config_from_dict(base | {"data": {"name": "mnist", "condition": "grayscale"}})


@pytest.mark.parametrize(("name", "shape"), [("top_half", (1, 28, 28)), ("window14", (1, 28, 28)),
                                             ("grayscale", (3, 32, 32))])
def test_a_conditional_model_trains_a_step_on_each_new_condition(name, shape):
    from latentprior.models.build import build_model
    from latentprior.objectives import build_objective
    from latentprior.objectives.base import run_updates

    data = "cifar10" if shape[0] == 3 else "mnist"
    cfg = config_from_dict({"data": {"name": data, "condition": name}, "net": {"arch": "unet", "width": 0.125},
                            "prior": {"kind": "realnvp", "layers": 2, "hidden": 16, "cond_embed": 8},
                            "model": {"latent_dim": 4}, "objective": {"kind": "cvae", "beta": 0.0}})
    torch.manual_seed(0)
    model = build_model(cfg, shape)
    metrics = run_updates(build_objective(cfg, model), _images(4, shape))
    assert all(torch.isfinite(v).all() for v in metrics.values())
    x = _images(2, shape)
    assert torch.equal(model.condition(x), CONDITIONS[name](x))
