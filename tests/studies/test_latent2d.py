"""Fig. 2 from a finished run with a 2-D latent and a flow prior."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentprior.training import train

TINY = {"data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4}, "objective": {"kind": "vae", "lr": 1e-3},
        "train": {"epochs": 0.4, "prior_epochs": 0, "batch_size": 100, "log_every": 1, "checkpoint_every": 1,
                  "progress": False}}  # digits: 1500 training images -> 15 steps per epoch -> 6 steps


def test_latent2d_figure_from_a_2d_run(tmp_path):
    import torch

    from latentprior.config import config_from_dict
    from latentprior.models.load import load_run
    from latentprior.studies.latent2d import latent2d_figure, latent2d_points

    cfg = config_from_dict(TINY | {"model": {"latent_dim": 2}, "train": TINY["train"] | {"epochs": 0.2}})
    train(cfg, tmp_path / "run")
    result = latent2d_figure(tmp_path / "run", n=200, split="test")
    png = Path(result["out"])
    assert png == tmp_path / "run" / "figures" / "latent2d.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert result["labels"] and result["n"] == 200

    model, _ = load_run(tmp_path / "run")
    for t in model.prior.transforms:  # a fresh coupling is the fixed map zb -> sigmoid(2) zb: make the flow non-trivial
        for p in t.parameters():
            torch.nn.init.normal_(p, std=0.3)
    pts = latent2d_points(model, torch.rand(50, 1, 28, 28), n_prior=40, generator=torch.Generator().manual_seed(0))
    assert pts["z"].shape == (50, 2) and pts["zp"].shape == (40, 2)
    with torch.no_grad():
        fz, _ = model.prior.to_base(torch.from_numpy(pts["z"]))
        zp, _ = model.prior.from_base(torch.from_numpy(pts["u"]))
    assert torch.allclose(fz, torch.from_numpy(pts["fz"]), atol=1e-5)  # (a) is f of the points in (b)
    assert torch.allclose(zp, torch.from_numpy(pts["zp"]), atol=1e-5)  # (d) is f^-1 of N(0, I) draws
    assert not torch.allclose(torch.from_numpy(pts["fz"]), torch.from_numpy(pts["z"]), atol=1e-3)


def test_latent2d_rejects_other_latent_sizes(tmp_path):
    from latentprior.config import config_from_dict
    from latentprior.studies.latent2d import FigureError, latent2d_figure

    cfg = config_from_dict(TINY | {"train": TINY["train"] | {"epochs": 0.07}})
    train(cfg, tmp_path / "run")
    with pytest.raises(FigureError, match="latent_dim = 2, this one has 4"):
        latent2d_figure(tmp_path / "run", n=20)
    normal = config_from_dict(TINY | {"prior": {"kind": "normal"}, "model": {"latent_dim": 2},
                                      "train": TINY["train"] | {"epochs": 0.07}})
    train(normal, tmp_path / "normal")
    with pytest.raises(FigureError, match="needs a flow prior .* this run has StandardNormal"):
        latent2d_figure(tmp_path / "normal", n=20)


