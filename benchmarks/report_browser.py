"""The HTML report of a small sweep, checked in a real browser: the page loads, every <img> resolves, a screenshot.

    python benchmarks/report_browser.py [--out DIR] [--screenshot FILE.png] [--chromium PATH] [--keep-sweep]

Runs an 8-run digits sweep in this process (VAE + RealNVP prior vs VAE + N(0, I) prior, β ∈ {0, 1},
seeds {0, 1}; a few steps each; NLL on the 297 test images, which needs no downloaded network), writes its report,
then moves the report folder away from the sweep (and, unless ``--keep-sweep``, deletes the sweep), so that
only a self-contained report can pass. Each ``<img>`` is checked on disk; with headless Chromium (``chromium``,
``chromium-browser`` or ``google-chrome`` on PATH, or ``--chromium``) the page is also loaded and every image's
``naturalWidth`` read back, and a full-page screenshot is written. The last line is ``images_ok=<bool>``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BASE = {"data": {"name": "digits"}, "net": {"width": 0.125}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 32},
        "model": {"latent_dim": 8}, "objective": {"kind": "vae", "lr": 2e-3},
        "train": {"epochs": 1, "batch_size": 100, "log_every": 3, "checkpoint_every": 15}}
SWEEP = {"name": "digits_prior_demo", "base": BASE,
         "models": {"vae_flow": {"label": "VAE + RealNVP prior", "train.prior_epochs": 0.5},
                    "vae_normal": {"label": "VAE + N(0, I) prior", "prior.kind": "normal"}},
         "grid": {"objective.beta": [0, 1], "train.seed": [0, 1]},
         "eval": {"metrics": ["nll"], "n": 297, "nll_k": 8}, "resources": {"threads": 1}}

# Appended to a copy of the page: after load, the number of images and of broken ones, as the body's attributes.
_PROBE = """<script>window.addEventListener('load', () => { const imgs = [...document.images];
document.body.setAttribute('data-images', imgs.length);
document.body.setAttribute('data-broken', imgs.filter(i => !i.complete || i.naturalWidth === 0)
  .map(i => i.getAttribute('src')).join('|')); });</script>"""


def find_chromium(given: str | None) -> str | None:
    for name in [given] if given else ["chromium", "chromium-browser", "google-chrome"]:
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


def _chromium(exe: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files",
             "--virtual-time-budget=5000"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)


def browser_check(page: Path, exe: str, screenshot: Path) -> dict:
    """Load ``page`` in headless Chromium: image count and broken images from the DOM, then a screenshot."""
    probe = page.with_name("_probe.html")
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    try:
        dom = _chromium(exe, "--dump-dom", probe.as_uri()).stdout
    finally:
        probe.unlink()
    m = re.search(r'data-images="(\d+)" data-broken="([^"]*)"', dom)
    if m is None:
        return {"browser": exe, "loaded": False}
    height = 900 + 420 * page.read_text().count("<section")  # the whole page, roughly
    shot = _chromium(exe, f"--screenshot={screenshot}", f"--window-size=1400,{height}", page.as_uri())
    return {"browser": exe, "loaded": True, "browser_images": int(m.group(1)),
            "broken": [b for b in m.group(2).split("|") if b], "screenshot": str(screenshot),
            "screenshot_ok": screenshot.is_file() and shot.returncode == 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="where the moved report goes (default: a temporary folder)")
    ap.add_argument("--screenshot", type=Path, help="PNG path (default: OUT/screenshot.png)")
    ap.add_argument("--chromium", help="browser executable (default: chromium, chromium-browser or google-chrome)")
    ap.add_argument("--keep-sweep", action="store_true", help="keep the sweep folder (default: deleted)")
    args = ap.parse_args()
    import torch

    from latentprior.reports import write_report
    from latentprior.sweeps.executor import run_sweep
    from latentprior.sweeps.grid import load_sweep

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="report_browser_"))
    sweep_file = work / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    t0 = time.perf_counter()
    result = run_sweep(load_sweep(sweep_file), work / "sweep", executor="local", progress=False)
    t_sweep = time.perf_counter() - t0
    report = write_report(work / "sweep")
    out = args.out or work / "moved_report"
    if out.exists():
        shutil.rmtree(out)
    shutil.move(report["out"], out)
    if not args.keep_sweep:
        shutil.rmtree(work / "sweep")
    page = out / "index.html"
    srcs = re.findall(r"<img [^>]*src='([^']+)'", page.read_text())
    missing = [s for s in srcs if not (page.parent / s).is_file()]
    summary = {"runs": result["trials"], "failed": result["failed"], "sweep_s": round(t_sweep, 1),
               "report": str(page), "images": len(srcs), "missing_on_disk": missing}
    exe = find_chromium(args.chromium)
    if exe is not None:
        summary |= browser_check(page, exe, args.screenshot or out / "screenshot.png")
    print(json.dumps(summary, indent=1))
    ok = bool(srcs) and not missing and not summary.get("broken") and summary.get("loaded", True)
    print(f"images_ok={ok}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
