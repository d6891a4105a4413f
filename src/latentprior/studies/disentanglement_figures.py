"""Figures of the disentanglement study, drawn from trained models (never trains).

* Fig. 7: per model, random samples and feature discovery by PCA on q(z): one image moved along the first
  principal component over [−1.5, 1.5] (in units of that component's standard deviation).
* Fig. 8: the median perceptual change per step of attribute-direction sequences, with the 5–95 % band,
  in Z_0 (top row) and Z_T (bottom row), one column per attribute.
* Fig. 6: attribute-direction sequences of a few images, the Z_0 row over the Z_T row, the original image
  in the leftmost column.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from latentprior.atomic import atomic_write_bytes
from latentprior.config import ConfigError
from latentprior.evaluation.directions import (
    RateOfChange,
    attribute_direction,
    decode_paths,
    direction_path,
    encode_codes,
    pca_traversal,
    rate_of_change,
)
from latentprior.priors import FlowPrior
from latentprior.reports.plots import pyplot, save_figure
from latentprior.sampling.grid import make_grid

__all__ = ["pca_rows", "plot_fig7", "plot_fig8", "plot_fig6", "attribute_sequences", "direction_figures",
           "study_figures"]

SPACE_NAMES = {"base": "$Z_0$", "z": "$Z_T$"}


@torch.no_grad()
def pca_rows(model, codes: Tensor, x: Tensor, *, n_samples: int = 8, steps: int = 7, seed: int = 0,
             span: float = 1.5) -> tuple[Tensor, Tensor]:
    """One model's Fig. 7 row: ``n_samples`` samples (n, C, H, W) and the PCA traversal (steps, C, H, W)
    of image x (1, C, H, W), the first principal coordinate over [−span, span] of the codes (N, D) of q(z)."""
    samples = model.sample(n_samples, generator=torch.Generator().manual_seed(seed)).cpu()
    device = next(model.parameters()).device
    z, _ = model.encode(x.to(device))  # (1, D): the posterior mean of the image
    path = pca_traversal(z.cpu(), codes, torch.linspace(-span, span, steps))  # (1, T, D)
    return samples, decode_paths(model, path)[0]


def plot_fig7(rows: dict[str, tuple[Tensor, Tensor]], out: str | Path) -> Path:
    """rows: model label -> (samples (n, C, H, W), traversal (T, C, H, W)); one figure row per model."""
    plt = pyplot()
    n_samples, steps = (int(t.shape[0]) for t in next(iter(rows.values())))
    fig, axes = plt.subplots(len(rows), 2, figsize=(1.1 * (n_samples + steps) + 1.5, 1.15 * len(rows) + 0.4),
                             squeeze=False, gridspec_kw={"width_ratios": [n_samples, steps]})
    for (label, (samples, traversal)), (a, b) in zip(rows.items(), axes, strict=True):
        a.imshow(make_grid(samples, nrow=samples.shape[0]))
        b.imshow(make_grid(traversal, nrow=traversal.shape[0]))
        a.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        for ax in (a, b):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("random samples", fontsize=10)
    axes[0, 1].set_title("first principal component of q(z), −1.5σ … 1.5σ", fontsize=10)
    return save_figure(fig, out)


def plot_fig8(results: dict[str, dict[str, RateOfChange]], out: str | Path, title: str = "") -> Path:
    """results: attribute -> {space ('base' | 'z') -> RateOfChange}; rows Z_0 then Z_T, a column per attribute."""
    plt = pyplot()
    spaces = [s for s in ("base", "z") if any(s in r for r in results.values())]
    fig, axes = plt.subplots(len(spaces), len(results), figsize=(3.2 * len(results), 2.6 * len(spaces)),
                             squeeze=False, sharex=True)
    for j, (attr, by_space) in enumerate(results.items()):
        for i, space in enumerate(spaces):
            ax = axes[i, j]
            if space not in by_space:
                ax.set_axis_off()
                continue
            r = by_space[space]
            steps = range(1, r.changes.shape[1] + 1)
            ax.fill_between(steps, r.p5, r.p95, alpha=0.3, color=f"C{i}", label="5–95 %")
            ax.plot(steps, r.median, color=f"C{i}", marker=".", label="median")
            ax.set_ylim(bottom=0)
            if i == 0:
                ax.set_title(attr, fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{SPACE_NAMES[space]}\nperceptual change")
            if i == len(spaces) - 1:
                ax.set_xlabel("index in sequence")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_fig6(sequences: dict[str, dict[str, Tensor]], originals: dict[str, Tensor], out: str | Path) -> Path:
    """sequences: attribute -> {space -> frames (B, T, C, H, W)}; originals: attribute -> images (B, C, H, W).

    Each attribute gets a panel of B pairs of rows: the original image, then its Z_0 sequence, and below it
    the original again and its Z_T sequence.
    """
    plt = pyplot()
    fig, axes = plt.subplots(len(sequences), 1, figsize=(10, 2.4 * len(sequences)), squeeze=False)
    for ax, (attr, by_space) in zip(axes[:, 0], sequences.items(), strict=True):
        rows = []
        for k in range(originals[attr].shape[0]):
            for space in ("base", "z"):
                if space in by_space:
                    rows.append(torch.cat([originals[attr][k:k + 1], by_space[space][k]]))  # (1 + T, C, H, W)
        grid = torch.cat(rows)
        ax.imshow(make_grid(grid, nrow=rows[0].shape[0]))
        ax.set_title(f"{attr}: original, then Z_0 row over Z_T row", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, out)


def attribute_sequences(model, codes: Tensor, has_attribute: Tensor, distance, *, starts: int, steps: int = 16,
                        grid_images: int = 2) -> tuple[dict[str, RateOfChange], dict[str, Tensor], Tensor]:
    """Rate of change and example frames along one attribute's direction, in Z_T and (for a flow) Z_0.

    codes (N, D): z ~ q(z|x) of training images; has_attribute (N,) bool. The sequences start from the first
    ``starts`` codes without the attribute. Returns ({space: RateOfChange}, {space: frames (k, T, C, H, W)},
    the indices into ``codes`` of the k = ``grid_images`` example starts).
    """
    d = attribute_direction(codes, has_attribute)
    start = (~has_attribute).nonzero().squeeze(1)[:starts]  # (P,)
    spaces = ("base", "z") if isinstance(model.prior, FlowPrior) else ("z",)
    device = next(model.parameters()).device
    rates, frames = {}, {}
    for space in spaces:
        rates[space] = rate_of_change(model, codes[start], d, distance, space=space, steps=steps)
        example = codes[start[:grid_images]].to(device)
        frames[space] = decode_paths(model, direction_path(model.prior, example, d.to(device), steps, space))
    return rates, frames, start[:grid_images]


def _fig8_record(results: dict[str, dict[str, RateOfChange]]) -> dict:
    return {attr: {space: {"median": r.median.tolist(), "p5": r.p5.tolist(), "p95": r.p95.tolist(),
                           "max_over_min_median": r.flatness(), "sequences": int(r.changes.shape[0])}
                   for space, r in by_space.items()} for attr, by_space in results.items()}


def study_figures(run_dirs: dict[str, Path], settings, out: str | Path, *, labels: dict[str, str] | None = None,
                  data_dir: str | None = None, weights_dir: str | None = None, device: str | None = None,
                  seed: int = 0) -> dict[str, Path]:
    """Figs. 7, 8 and 6 of the finished runs ``run_dirs`` (name -> run directory) into ``out``; ``settings`` is
    the study's :class:`~latentprior.studies.disentanglement.StudySettings`. Fig. 7 shows the runs that
    ``labels`` (name -> row label) names, all of them when None. Also writes ``fig8.json`` (the plotted
    medians and percentiles)."""
    from latentprior.data import load_dataset
    from latentprior.models.load import load_run

    out = Path(out)
    loaded = {name: load_run(d, device=device or "cpu") for name, d in run_dirs.items()}
    models, cfg = {name: m for name, (m, _) in loaded.items()}, loaded[settings.interpolation_model][1]
    train = load_dataset(cfg.data.name, "train", data_dir if data_dir is not None else cfg.data.dir,
                         verify=cfg.data.verify)
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:settings.direction_codes]
    images = train.images[idx]  # (N, C, H, W) uint8: the encoded training images
    codes = {name: encode_codes(m, images, generator=torch.Generator().manual_seed(seed))
             for name, m in models.items()}

    x0 = images[:1].float() / 255.0
    labels = labels if labels is not None else {name: name for name in models}
    rows = {label: pca_rows(models[name], codes[name], x0, n_samples=settings.samples, steps=settings.pca_steps,
                            seed=seed) for name, label in labels.items()}
    paths = {"fig7": plot_fig7(rows, out / "fig7.png")}
    name = settings.interpolation_model
    return paths | direction_figures(models[name], codes[name], images, _attribute_labels(train, idx, settings),
                                     settings, out, weights_dir=weights_dir, title=f"{name} on {cfg.data.name}")


def direction_figures(model, codes: Tensor, images: Tensor, has: dict[str, Tensor], settings, out: Path, *,
                      weights_dir: str | None = None, title: str = "") -> dict[str, Path]:
    """Figs. 8 and 6 (and ``fig8.json``) of one model: codes (N, D) of the uint8 images (N, C, H, W), and
    has: attribute -> (N,) bool. The perceptual change is the VGG16 feature distance."""
    from latentprior.evaluation.lpips import TRUNK_FILES, VGGFeatureDistance

    weights = None if weights_dir is None else Path(weights_dir) / TRUNK_FILES["vgg"]
    distance = VGGFeatureDistance(weights).to(next(model.parameters()).device)
    results, sequences, originals = {}, {}, {}
    for a, mask in has.items():
        rates, frames, start = attribute_sequences(model, codes, mask, distance, starts=settings.direction_images,
                                                   steps=settings.steps, grid_images=settings.grid_images)
        results[a], sequences[a], originals[a] = rates, frames, images[start].float() / 255.0
    atomic_write_bytes(out / "fig8.json", (json.dumps(_fig8_record(results), indent=1) + "\n").encode())
    return {"fig8": plot_fig8(results, out / "fig8.png", title=title),
            "fig6": plot_fig6(sequences, originals, out / "fig6.png"), "fig8_json": out / "fig8.json"}


def _attribute_labels(train, idx: Tensor, settings) -> dict[str, Tensor]:
    """attribute -> (N,) bool for the training images ``idx``, for the attributes the study names."""
    from latentprior.evaluation.attributes import attribute_set

    attrs = attribute_set(train, settings.attribute_kind)
    names = list(settings.attributes) or list(attrs.names[:3])
    unknown = [a for a in names if a not in attrs.names]
    if unknown:
        raise ConfigError(f"study.attributes: {unknown} are not attributes of {train.name} "
                          f"({settings.attribute_kind}); known: {list(attrs.names)}")
    labels = attrs.labels(_take(train, idx)) > 0.5  # (N, A)
    return {a: labels[:, attrs.names.index(a)] for a in names}


def _take(data, idx: Tensor):
    """The examples ``idx`` of an ImageDataset, as an ImageDataset (what an attribute set reads)."""
    from latentprior.data.dataset import ImageDataset

    def pick(t: Tensor | None) -> Tensor | None:
        return None if t is None else t[idx]

    return ImageDataset(data.images[idx], pick(data.labels), pick(data.attributes), data.attribute_names,
                        data.name, data.split)
