"""Fig. 2: the latent distributions of a 2-D VAE with a flow prior.

    (a) f(z), z ~ q(z), coloured by class   -- the encoder's codes mapped to the flow's base space Z_0
    (b) q(z), coloured by class             -- the aggregate posterior in Z_T
    (c) q(z), uncoloured
    (d) f^-1(u), u ~ N(0, I)                -- samples of the learned prior p(z) in Z_T

(b)-(d) share their axes so that q(z) and p(z) can be compared by eye; (a) is drawn on the scale of
N(0, I), which is what f(q) should look like when the prior fits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentprior.errors import UserError
from latentprior.priors import FlowPrior

__all__ = ["FigureError", "latent2d_points", "plot_latent2d", "latent2d_figure"]


class FigureError(ValueError, UserError):
    """The run cannot give this figure (e.g. Fig. 2 of a run whose latent space is not 2-D)."""


@torch.no_grad()
def latent2d_points(model, images: torch.Tensor, *, n_prior: int, batch_size: int = 500,
                    generator: torch.Generator | None = None) -> dict[str, np.ndarray]:
    """Encode ``images`` (N, C, H, W) in [0, 1] and draw ``n_prior`` prior samples through the flow.

    Returns ``z`` (N, 2) draws from q(z|x), ``fz`` (N, 2) = f(z), ``u`` (n_prior, 2) and ``zp`` = f^-1(u).
    """
    prior = model.prior
    if model.latent_dim != 2:
        raise FigureError(f"Fig. 2 needs a run with model.latent_dim = 2, this one has {model.latent_dim}")
    if not isinstance(prior, FlowPrior):
        raise FigureError(f"Fig. 2 needs a flow prior (prior.kind 'realnvp'), this run has {type(prior).__name__}")
    model.eval()
    dev = next(model.parameters()).device
    zs = []
    for i in range(0, len(images), batch_size):
        mean, logvar = model.encode(images[i:i + batch_size].to(dev))
        # Draws from q(z|x), not only means: q(z) is the mixture the prior is fitted to.
        std = torch.zeros_like(mean) if logvar is None else torch.exp(0.5 * logvar)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(dev)
        zs.append(mean + std * eps)
    z = torch.cat(zs)  # (N, 2)
    fz, _ = prior.to_base(z)
    u = torch.randn(n_prior, 2, generator=generator, dtype=z.dtype).to(dev)
    zp, _ = prior.from_base(u)
    return {k: v.float().cpu().numpy() for k, v in {"z": z, "fz": fz, "u": u, "zp": zp}.items()}


def _limits(*arrays: np.ndarray, q: float = 0.5) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits covering the central (100 - 2q)% of all points, with a margin, so outliers do not shrink the view."""
    pts = np.concatenate(arrays)
    lo, hi = np.percentile(pts, q, axis=0), np.percentile(pts, 100 - q, axis=0)
    pad = 0.08 * (hi - lo) + 1e-6
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


def plot_latent2d(points: dict[str, np.ndarray], labels: np.ndarray | None, out: str | Path,
                  title: str = "") -> Path:
    """Draw the four panels of Fig. 2 into a PNG at ``out``."""
    from latentprior.reports.plots import pyplot, save_figure

    plt = pyplot()

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.6))
    s = 2.0 if len(points["z"]) > 3000 else 5.0
    colour = dict(c=labels, cmap="tab10", vmin=-0.5, vmax=9.5) if labels is not None else dict(c="C0")
    sc = axes[0].scatter(*points["fz"].T, s=s, alpha=0.6, linewidths=0, **colour)
    axes[0].set_xlim(-4, 4)
    axes[0].set_ylim(-4, 4)
    axes[0].set_title("(a) f(z), z ~ q(z)")
    axes[1].scatter(*points["z"].T, s=s, alpha=0.6, linewidths=0, **colour)
    axes[1].set_title("(b) q(z)")
    axes[2].scatter(*points["z"].T, s=s, alpha=0.6, linewidths=0, c="0.2")
    axes[2].set_title("(c) q(z), no class colours")
    axes[3].scatter(*points["zp"].T, s=s, alpha=0.6, linewidths=0, c="C3")
    axes[3].set_title("(d) f⁻¹(u), u ~ N(0, I)")
    xlim, ylim = _limits(points["z"], points["zp"])
    for ax in axes[1:]:
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
    for ax in axes:
        ax.set_aspect("equal", adjustable="box")
        ax.tick_params(labelsize=8)
    if labels is not None:
        cb = fig.colorbar(sc, ax=axes.tolist(), fraction=0.015, pad=0.01, ticks=range(10))
        cb.set_label("class")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out, dpi=120)


def latent2d_figure(run_dir: str | Path, out: str | Path | None = None, *, n: int = 5000, split: str = "test",
                    data_dir: str | None = None, seed: int = 0, device: str | None = None) -> dict[str, Any]:
    """Fig. 2 for a finished run: encode ``n`` images of ``split``; writes ``RUN_DIR/figures/latent2d.png``."""
    from latentprior.data import load_dataset
    from latentprior.models.load import load_run

    run_dir = Path(run_dir)
    model, cfg = load_run(run_dir, device=device)
    ds = load_dataset(cfg.data.name, split, data_dir or cfg.data.dir, verify=cfg.data.verify)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[: min(n, len(ds))]
    images = ds.batch(idx)  # (N, C, H, W) in [0, 1]
    labels = ds.labels[idx].numpy() if ds.labels is not None else None
    points = latent2d_points(model, images, n_prior=len(idx), generator=g)
    title = (f"{run_dir.name}: {cfg.data.name} {split}, β = {cfg.objective.beta:g}, "
             f"{cfg.prior.kind} prior ({cfg.prior.layers} layers), n = {len(idx)}")
    path = plot_latent2d(points, labels, out or run_dir / "figures" / "latent2d.png", title=title)
    return {"out": str(path), "n": int(len(idx)), "split": split, "labels": labels is not None,
            "fz_mean": points["fz"].mean(0).round(3).tolist(), "fz_std": points["fz"].std(0).round(3).tolist()}
