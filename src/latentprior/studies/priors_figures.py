"""The files of ``latentprior experiment priors``: tables (Markdown, CSV), plots (reports/plots.py) and labelled
sample grids.

Grids show, per (latent dimension, β) of the first seed, the first test images, their reconstructions
G(mean of q(z|x)), and for every prior the first samples of the evaluation's own sample set (the first chunk of
``generated_images`` at the eval seed), so a grid shows images that the FID beside it scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentprior.formatting import fmt_label, fmt_mean_std
from latentprior.reports.plots import plot_metric_vs, pyplot, save_figure
from latentprior.reports.tables import write_csv, write_text
from latentprior.studies.priors_spec import Cell, PriorStudy, run_name

__all__ = ["write_tables", "plots", "sample_grids", "labelled_grid", "COLUMNS"]

# column -> Markdown header (the numbers are formatted by latentprior/formatting.py)
COLUMNS = {"fid": "FID ↓", "recon_fid": "recon. FID ↓", "fid_ratio": "FID / recon. FID ↓", "precision": "precision ↑",
           "recall": "recall ↑", "prior_nll": "prior NLL ↓ (nats)", "prior_s": "prior s"}
_KEY_COLUMNS = {"label": "prior", "fit": "fit", "latent_dim": "dim", "beta": "β", "seeds": "seeds"}
# at β = 0, whether a joint run's encoder and decoder equal the autoencoder entry's bit for bit (a column only when
# the study has another joint entry to compare)
_SAME = {"same_autoencoder": "same autoencoder as the ex-post priors' (β = 0)"}


def _cell(row: dict[str, Any], metric: str) -> str:
    return fmt_mean_std(row[f"{metric}_mean"], row[f"{metric}_std"])


def _markdown(rows: list[dict[str, Any]], keys: dict[str, str], metrics: dict[str, str],
              extra: dict[str, str] | None = None) -> str:
    extra = extra or {}
    header = list(keys.values()) + list(metrics.values()) + list(extra.values())
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [fmt_label(r[k]) for k in keys] + [_cell(r, m) for m in metrics]
        cells += ["" if r.get(k) is None else ("yes" if r[k] is True else "no" if r[k] is False else fmt_label(r[k]))
                  for k in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _settings(study: PriorStudy) -> str:
    ev, cfg = study.eval, study.base
    return (f"{cfg.data.name}, net {cfg.net.arch} x{cfg.net.width:g}; FID and precision/recall (k = 3) of {ev.n} "
            f"samples, reconstruction FID of the first {ev.n} test images, both against the first "
            f"{ev.n_ref or ev.n} test images; prior NLL: -log p(z) of one z ~ q(z|x) per test image (nats per "
            f"latent vector); mean ± std over seeds. prior s: a joint prior's run's whole training (autoencoder "
            f"and prior), an ex-post prior's fit alone.")


def write_tables(study: PriorStudy, dest: Path, per_seed: list[dict[str, Any]], summary: list[dict[str, Any]],
                 temps: list[dict[str, Any]], temp_summary: list[dict[str, Any]]) -> list[Path]:
    n = study.eval.n
    files = [write_csv(per_seed, dest / f"priors_runs_n{n}.csv"), write_csv(summary, dest / f"priors_n{n}.csv")]
    text = (f"Prior study ({_settings(study)})\n\n"
            + _markdown(summary, _KEY_COLUMNS, COLUMNS, _SAME if any(r.get("same_autoencoder") is not None
                                                                     for r in summary) else None))
    files.append(write_text(dest / f"priors_n{n}.md", text))
    if temps:
        files += [write_csv(temps, dest / f"temperature_runs_n{n}.csv"),
                  write_csv(temp_summary, dest / f"temperature_n{n}.csv")]
        keys = {k: v for k, v in _KEY_COLUMNS.items() if k != "fit"} | {"temperature": "τ"}
        text = (f"Sampling temperature ({_settings(study)})\n\n"
                + _markdown(temp_summary, keys, {m: COLUMNS[m] for m in ("fid", "precision", "recall")}))
        files.append(write_text(dest / f"temperature_n{n}.md", text))
    return files


def plots(study: PriorStudy, dest: Path, summary: list[dict[str, Any]],
          temp_summary: list[dict[str, Any]]) -> list[Path]:
    """FID and the FID ratio against β (one line per prior, and per latent size when there are several), FID
    against the latent size, and FID / precision / recall against τ."""
    dims = len(study.latent_dims) > 1
    lines = ("model", "latent_dim") if dims else ("model",)
    made = []
    if len(study.betas) > 1:
        for metric in ("fid", "fid_ratio", "recon_fid"):
            made.append(plot_metric_vs(summary, "beta", metric, dest / f"{metric}_vs_beta.png", line_keys=lines,
                                       xlabel="β (not to scale)", title=f"{study.base.data.name}: {metric} vs β"))
    if dims:
        made.append(plot_metric_vs(summary, "latent_dim", "fid", dest / "fid_vs_latent_dim.png",
                                   line_keys=("model", "beta"), categorical=False, xlabel="latent dimension",
                                   title=f"{study.base.data.name}: FID vs latent dimension (Fig. 5)"))
    for metric in ("fid", "precision", "recall") if temp_summary else ():
        made.append(plot_metric_vs(temp_summary, "temperature", metric, dest / f"{metric}_vs_temperature.png",
                                   line_keys=("model", "beta", "latent_dim") if dims else ("model", "beta"),
                                   xlabel="sampling temperature τ",
                                   title=f"{study.base.data.name}: {metric} vs temperature"))
    return [p for p in made if p is not None]


def labelled_grid(rows: list[tuple[str, torch.Tensor]], path: Path, title: str = "") -> Path:
    """Rows of images (each (K, C, H, W) in [0, 1]) as one figure with each row's label at its left."""
    from latentprior.sampling.grid import make_grid

    k = max(x.shape[0] for _, x in rows)
    grid = make_grid(torch.cat([x for _, x in rows]), nrow=k)  # (rows·(H+2)+2, k·(W+2)+2, 3)
    plt = pyplot()
    h = rows[0][1].shape[-2] + 2
    fig, ax = plt.subplots(figsize=(0.5 * k + 2.2, 0.5 * len(rows) + 0.4))
    ax.imshow(grid, interpolation="nearest")
    ax.set_yticks([2 + h * i + h / 2 for i in range(len(rows))], [label for label, _ in rows], fontsize=7)
    ax.set_xticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def _first_samples(model, study: PriorStudy, temperature: float = 1.0) -> torch.Tensor:
    from latentprior.evaluation.features import SAMPLE_CHUNK, chunk_generator

    kw = {} if temperature == 1.0 else {"temperature": temperature}
    return model.sample(SAMPLE_CHUNK, generator=chunk_generator(study.eval.seed, 0), **kw)[:study.grid_samples].cpu()


@torch.no_grad()
def sample_grids(study: PriorStudy, out: Path, dest: Path, *, data_dir: str | None,
                 device: str | None) -> list[Path]:
    """``samples_dim<d>_beta<b>.png`` per (latent dim, β) and ``temperature_<prior>_dim<d>_beta<b>.png`` per prior of
    the temperature sweep, from the first seed's runs in ``out``, written into ``dest``."""
    from latentprior.data import load_dataset
    from latentprior.evaluation.prior_hole import reconstructed_images
    from latentprior.models.expost import use_run_prior
    from latentprior.models.load import load_run

    made, k = [], study.grid_samples
    for dim in study.latent_dims:
        for beta in study.betas:
            cell = Cell(dim, beta, study.seeds[0])
            ae_run = out / "runs" / run_name(study.autoencoder, cell)
            model, cfg = load_run(ae_run, device=device)
            test = load_dataset(cfg.data.name, "test", data_dir if data_dir is not None else cfg.data.dir,
                                verify=cfg.data.verify)
            recon = next(reconstructed_images(model, test.images[:k], k)).cpu()
            rows = [("test images", test.images[:k].float() / 255.0), ("reconstructions", recon)]
            for name, entry in study.joint.items():
                joint, _ = load_run(out / "runs" / run_name(name, cell), device=device)
                rows.append((entry.label, _first_samples(joint, study)))
            for name, entry in study.expost.items():
                if entry.at(beta):
                    rows.append((entry.label, _first_samples(use_run_prior(model, ae_run, name), study)))
            made.append(labelled_grid(rows, dest / f"samples_dim{dim}_beta{beta:g}.png",
                                      f"{cfg.data.name}, latent {dim}, β = {beta:g}, seed {cell.seed}"))
            if beta in study.temperatures.betas:
                made += _temperature_grids(study, out, dest, cell, device)
    return made


def _temperature_grids(study: PriorStudy, out: Path, dest: Path, cell: Cell, device: str | None) -> list[Path]:
    from latentprior.models.expost import use_run_prior
    from latentprior.models.load import load_run

    made = []
    for name in study.temperatures.priors:
        joint = name in study.joint
        if not joint and not study.expost[name].at(cell.beta):
            continue
        run = out / "runs" / run_name(name if joint else study.autoencoder, cell)
        model, _ = load_run(run, device=device)
        model = model if joint else use_run_prior(model, run, name)
        taus = sorted({1.0, *study.temperatures.values})
        rows = [(f"τ = {t:g}", _first_samples(model, study, t)) for t in taus]
        made.append(labelled_grid(rows, dest / f"temperature_{name}_dim{cell.dim}_beta{cell.beta:g}.png",
                                  f"{name}: latent {cell.dim}, β = {cell.beta:g}, seed {cell.seed}"))
    return made
