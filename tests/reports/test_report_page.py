"""The report page as a reader sees it: pictures at their own resolution that enlarge on a click, readable loss
curves, relative links only (the TensorBoard folder too), three significant digits."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml
from PIL import Image

from latentprior.reports import plots, write_report


def _run(root: Path, name: str, fid: float, beta: float) -> Path:
    run = root / "runs" / name
    (run / "samples").mkdir(parents=True)
    (run / "eval").mkdir()
    (run / "tb").mkdir()
    (run / "tb" / "events.out.tfevents.0").write_bytes(b"")
    Image.new("L", (302, 302), 128).save(run / "samples" / "samples.png")
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"name": "digits"}, "objective": {"kind": "vae",
                                     "beta": beta}, "prior": {"kind": "realnvp"}, "train": {"seed": 0}}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "phase": "joint", "autoencoder/loss": 50 - s,
                                                           "prior/loss": 9 - s / 10}) + "\n" for s in range(1, 30)))
    (run / "eval" / "fid.json").write_text(json.dumps({"value": fid, "protocol": {"n": 100}}))
    return run


def test_page_pictures_links_and_numbers(tmp_path):
    _run(tmp_path, "a", 746.0123, 0.0)
    _run(tmp_path, "b", 24.351, 1.0)
    out = Path(write_report(tmp_path)["out"])
    page = (out / "index.html").read_text()
    assert "file://" not in page
    # every picture of a run: linked to its own file (click to enlarge), shown no smaller than it is
    figs = re.findall(r"<a class='zoom' href='([^']+)'[^>]*><img class='[^']*' src='([^']+)' width='(\d+)'", page)
    assert len(figs) == 4  # samples and loss curves of two runs
    for href, src, width in figs:
        with Image.open(out / src) as im:
            assert href == src and int(width) >= im.size[0]
    with Image.open(out / "runs" / "a" / "losses.png") as losses:
        assert losses.size[0] >= 600
    # the TensorBoard folder, relative to the page, and it resolves from there
    (tb,) = re.findall(r"<a href='([^']+)'>tb/</a>", page)[:1]
    assert not os.path.isabs(tb) and (out / tb).resolve() == (tmp_path / "runs" / "a" / "tb").resolve()
    # numbers: 3 significant digits on the page and in the Markdown
    assert "fid ↓ = 746 " in page and "fid ↓ = 24.4 " in page and "746.0" not in page
    assert "| 746 |" in (out / "summary.md").read_text()


def test_loss_curves_have_labelled_axes_and_readable_ticks(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out, dpi=150, svg=False: figures.append((fig, dpi)) or out)
    records = [{"step": s, "phase": "joint" if s < 5 else "prior", "autoencoder/loss": 1.0 / s, "prior/loss": 2.0,
                "discriminator/loss": 0.7} for s in range(1, 9)]
    plots.plot_losses(records, tmp_path / "l.png")
    ((fig, dpi),) = figures
    assert fig.get_size_inches()[0] * dpi >= 600
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 3
    for ax in shown:
        assert ax.get_xlabel() and ax.get_ylabel()
        assert min(t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels()) >= 8
