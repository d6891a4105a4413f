"""How well does the adversarial prior match q(z)? Train AAE variants side by side and score each prior.

The AAE's prior is a GAN in latent space: at β = 0 the encoder ignores it, so the only question is whether the
MLP prior learns the aggregate posterior q(z). This script trains the given variants of a base config (each a
list of ``--set`` overrides) as parallel ``latentprior train`` processes, then for each run reports

* latent precision / recall (Kynkäänniemi et al., k = 3) of 5,000 prior draws against 5,000 encoded test
  images: precision = prior draws inside q's support ("prior holes" lower it), recall = q covered by the prior;
* the discriminator's last logged D(prior) and D(q) (0.5 each when the game is balanced);
* wall time and throughput,

and writes one labelled montage of every variant's 100-sample grid (decoder means G(z), z from the prior).

    python benchmarks/aae_prior_search.py --out runs/aae_search --data-dir ../shared/data --device cpu \\
        --variant paper="" --variant r1="objective.adversarial_loss=nonsaturating objective.r1_penalty=1"

Without ``--variant`` the built-in list below is run (the one that chose configs/cpu/mnist_aae_adv.yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

# name -> overrides of configs/cpu/mnist_aae_adv.yaml. Every built-in variant starts from BEFORE, the preset as it
# stood before this search (paper-form loss, Adam(0.9, 0.999), lr 1e-3 everywhere, no R1, no prior-only epochs),
# so the list reproduces the search whatever the preset now says.
BEFORE = ("objective.adversarial_loss=paper objective.adam_beta1=0.9 objective.prior_lr=1e-3 objective.disc_lr=1e-3 "
          "objective.r1_penalty=0 train.epochs=3 train.prior_epochs=0 ")
GAN = "objective.adversarial_loss=nonsaturating objective.adam_beta1=0.5 objective.prior_lr=2e-4 objective.disc_lr=2e-4"
DEFAULT_VARIANTS: dict[str, str] = {
    "paper_form_p10": "objective.adversarial_loss=paper train.prior_epochs=10",
    "nonsat_p10": "objective.adversarial_loss=nonsaturating train.prior_epochs=10",
    "nonsat_r1_p10": "objective.adversarial_loss=nonsaturating objective.r1_penalty=1 train.prior_epochs=10",
    "gan_p10": f"{GAN} train.prior_epochs=10",
    "gan_r1_p10": f"{GAN} objective.r1_penalty=1 train.prior_epochs=10",
    "gan_r1x10_p10": f"{GAN} objective.r1_penalty=10 train.prior_epochs=10",
    "gan_r1_p0": f"{GAN} objective.r1_penalty=1 train.prior_epochs=0",
    "gan_r1_p30": f"{GAN} objective.r1_penalty=1 train.prior_epochs=30",
    "paperloss_gan_r1_p10": GAN.replace("nonsaturating", "paper") + " objective.r1_penalty=1 train.prior_epochs=10",
    "gan_r1_lr1e-4_p20": f"{GAN} objective.r1_penalty=1 objective.prior_lr=1e-4 objective.disc_lr=1e-4 "
                         "train.prior_epochs=20",
    "gan_r1_det_p10": f"{GAN} objective.r1_penalty=1 train.prior_epochs=10 model.encoder=deterministic",
    "gan_r1_wide_p10": f"{GAN} objective.r1_penalty=1 train.prior_epochs=10 prior.hidden=1024 prior.disc_hidden=1024",
}


def _train(name: str, sets: str, args: argparse.Namespace, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "latentprior.cli", "train", str(args.config), "--out", str(out / name),
           "--set", "train.progress=false", "--set", f"train.device={args.device}",
           "--set", f"train.threads={args.threads}"]
    for s in shlex.split(sets):
        cmd += ["--set", s]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    log = open(out / f"{name}.log", "w")  # noqa: SIM115 - closed with the process below
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


@torch.no_grad()
def _score(run_dir: Path, test_x: torch.Tensor, device: str) -> dict:
    from latentprior.evaluation import precision_recall
    from latentprior.models.load import load_run

    model, _ = load_run(run_dir, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    z_q = torch.cat([model.posterior_sample(*model.encode(test_x[i:i + 500].to(device)))
                     for i in range(0, len(test_x), 500)])
    z_p = model.prior.sample(len(test_x), generator=g)
    pr = precision_recall(z_q.cpu(), z_p.cpu())
    samples = model.decode(model.prior.sample(100, generator=torch.Generator(device=device).manual_seed(1)))
    last = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    joint = [r for r in last if r.get("phase") == "joint"]
    ips = [r["images_per_s"] for r in joint if "images_per_s" in r]
    return {"latent_precision": pr["precision"], "latent_recall": pr["recall"],
            "d_prior": last[-1].get("discriminator/d_prior"), "d_encoded": last[-1].get("discriminator/d_encoded"),
            "mse": joint[-1].get("autoencoder/mse") if joint else None,
            "q_std": z_q.std(0).mean().item(), "prior_std": z_p.std(0).mean().item(),
            "joint_images_per_s_median": sorted(ips)[len(ips) // 2] if ips else None,
            "samples": samples.float().cpu()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "configs/cpu/mnist_aae_adv.yaml")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/aae_search")))
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per training process")
    p.add_argument("--parallel", type=int, default=12, help="training processes at once")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=SETS",
                   help="a variant: name=space-separated key=value overrides (repeatable)")
    args = p.parse_args()
    variants = (dict(v.split("=", 1) for v in args.variant) if args.variant
                else {k: BEFORE + v for k, v in DEFAULT_VARIANTS.items()})
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.out / "runs"
    runs.mkdir(exist_ok=True)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"

    t0, pending, active, wall = time.time(), list(variants.items()), {}, {}
    while pending or active:
        while pending and len(active) < args.parallel:
            name, sets = pending.pop(0)
            active[name] = (_train(name, sets, args, runs), time.time())
        time.sleep(2)
        for name, (proc, started) in list(active.items()):
            if proc.poll() is not None:
                wall[name] = time.time() - started
                print(f"{name}: exit {proc.returncode} after {wall[name]:.0f} s", flush=True)
                del active[name]

    from latentprior.data import load_dataset
    from latentprior.sampling import make_grid

    data_dir = args.data_dir or os.environ.get("LATENTPRIOR_DATA_DIR")
    test_x = load_dataset("mnist", "test", data_dir).images[:5000].float() / 255
    results, grids = {}, []
    for name, sets in variants.items():
        if not (runs / name / "checkpoints" / "latest.json").is_file():
            results[name] = {"sets": sets, "error": f"no checkpoint; see {runs / name}.log"}
            continue
        try:
            r = _score(runs / name, test_x, args.device)
        except Exception as e:  # one broken run must not cost the others' scores
            results[name] = {"sets": sets, "error": f"scoring failed: {e!r}"}
            continue
        grids.append((name, make_grid(r.pop("samples"), nrow=10)))
        results[name] = {"sets": sets, "wall_s": round(wall.get(name, float("nan")), 1), **r}
        print(json.dumps({"variant": name, **{k: v for k, v in results[name].items() if k != "sets"}}), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))

    if not grids:
        raise SystemExit(f"no variant finished; see the logs in {runs}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    rows = (len(grids) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, grid) in zip(axes.flat, grids, strict=False):
        ax.imshow(grid)
        r = results[name]
        ax.set_title(f"{name}\nP={r['latent_precision']:.2f} R={r['latent_recall']:.2f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out / "montage.png", dpi=110)
    print(f"total {time.time() - t0:.0f} s; wrote {args.out / 'results.json'} and {args.out / 'montage.png'}")


if __name__ == "__main__":
    main()
