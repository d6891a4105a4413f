"""The prepared GPU check (run by scripts/gpu_check.sh), under 8 minutes on one H100:

1. training throughput and utilisation of the paper's MNIST VAE + flow prior, variants fp32 / bf16 /
   bf16 + channels_last timed in alternation (benchmarks/throughput.py's rows);
2. a full-size MNIST training at beta = 0 (configs/mnist_vae_flow.yaml) with the fastest measured variant,
   for as many epochs as the time budget leaves (joint epochs, then a quarter as many prior-only epochs);
3. its FID against the MNIST test set (``evaluate_run``), or, where the Inception weights are absent (they are
   87 MB, over the device tool's 64 MiB transfer limit), 10,000 uint8 samples in OUT for ``--fid-from-samples``
   to score on this machine.

Without CUDA it runs the same stages on the CPU preset with a tiny budget: the fallback path the CPU tests
exercise. Everything it reports lands in OUT: log, throughput.json, metrics.jsonl, samples.png, summary.json,
and fid.json or samples_uint8.pt.

    python benchmarks/gpu_check.py --out OUT [--budget-s 450] [--data-dir DIR] [--fid-n 10000]
    python benchmarks/gpu_check.py --fid-from-samples OUT/samples_uint8.pt --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import DATA_DIR, format_table, machine_lines, setup_device
from throughput import ROWS, training_rows

T0 = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - T0


def log(msg: str) -> None:
    print(f"[{elapsed():6.1f}s] {msg}", flush=True)


def measure(device: torch.device, row: str, variants: list[str], out: Path) -> list[dict]:
    rows = training_rows([row], variants, device, rounds=3)
    print(format_table(rows, ["row", "variant", "images/s", "step ms", "GFLOP/img", "achieved GFLOP/s",
                              "utilisation", "peak GFLOP/s", "+MiB", "data"]))
    (out / "throughput.json").write_text(json.dumps({"rows": rows}, indent=1))
    return rows


def run_training(device, cfg_path: str, data_dir: str, fastest: dict, seconds: float, run_dir: Path) -> dict:
    from latentprior.config import load_config
    from latentprior.training import NonFiniteLossError, train

    cfg = load_config(Path(__file__).resolve().parents[1] / cfg_path)
    steps_per_epoch = 60000 // cfg.train.batch_size
    # A prior-only step (frozen encoder forward + flow) costs about half a joint step.
    step_s = fastest["step ms"] / 1e3
    epochs = max(0.05, seconds / (steps_per_epoch * step_s * (1 + 0.25 * 0.5)))
    variant = fastest["variant"]
    cfg = cfg.replace(**{
        "data.dir": data_dir, "objective.beta": 0.0, "train.epochs": round(epochs, 2),
        "train.prior_epochs": round(epochs / 4, 2), "train.device": str(device), "train.progress": False,
        "train.log_every": 100, "train.checkpoint_every": 10**9, "train.amp": "bf16" if "bf16" in variant else "off",
        "train.channels_last": "cl" in variant})
    log(f"training {cfg_path} at beta 0, variant {variant}: {cfg.train.epochs} joint + {cfg.train.prior_epochs} "
        f"prior-only epochs (budget {seconds:.0f} s at {fastest['step ms']:.1f} ms/step)")
    try:
        summary = train(cfg, run_dir)
    except NonFiniteLossError as e:  # the last checkpoint is kept; score that
        log(f"training stopped: {e}")
        summary = {"error": str(e)}
    return {"epochs": cfg.train.epochs, "prior_epochs": cfg.train.prior_epochs, "variant": variant, **summary}


def save_samples(run_dir: Path, n: int, out: Path) -> Path:
    """n samples as uint8 (what the FID extractor quantises to anyway), drawn in seeded chunks of 100."""
    from latentprior.training import load_run

    model, _ = load_run(run_dir)
    dev = next(model.parameters()).device
    chunks = [model.sample(min(100, n - s), generator=torch.Generator(dev).manual_seed(s)) for s in range(0, n, 100)]
    images = (torch.cat(chunks) * 255).round().to(torch.uint8).cpu()  # (n, C, H, W)
    path = out / "samples_uint8.pt"
    torch.save(images, path)
    return path


def fid_from_samples(path: Path, data_dir: str, batch_size: int = 50) -> float:
    """FID of saved uint8 samples against the first len(samples) MNIST test images (evaluate_run's protocol)."""
    from latentprior.data import load_dataset
    from latentprior.evaluation import InceptionFeatureExtractor, feature_statistics, fid_from_statistics
    from latentprior.evaluation.runner import reference_statistics

    fake = torch.load(path, weights_only=True)
    real = load_dataset("mnist", "test", data_dir).images[: len(fake)]
    ext = InceptionFeatureExtractor(fast=True)
    # The test split's statistics come from the same cache `latentprior eval` fills (same key, same numbers).
    real_stats, _ = reference_statistics(real, ext, dataset="mnist", split="test", batch_size=batch_size)
    fake_stats = feature_statistics(ext(fake[i:i + batch_size]) for i in range(0, len(fake), batch_size))
    return fid_from_statistics(real_stats, fake_stats)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/gpu_check"))
    p.add_argument("--budget-s", type=float, default=450.0, help="the whole script, start to end")
    p.add_argument("--data-dir", default=None, help="holds mnist/*.gz (default: .gpu_data, then ../shared/data)")
    p.add_argument("--fid-n", type=int, default=None, help="default 10000 on CUDA, 100 on the CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--fid-from-samples", type=Path, help="score saved samples here, then exit")
    args = p.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    data_dir = args.data_dir or next((str(d) for d in (root / ".gpu_data", DATA_DIR) if (d / "mnist").is_dir()),
                                     str(DATA_DIR))
    if args.fid_from_samples:
        print(f"fid={fid_from_samples(args.fid_from_samples, data_dir):.3f}")
        return 0

    device = setup_device(args.device, None)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest algorithms once
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    print("\n".join(machine_lines(device)))
    if shutil.which("nvidia-smi"):
        print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip())
    fid_n = args.fid_n or (10000 if cuda else 100)
    row = "mnist_flow" if cuda else "cpu_mnist_flow"
    log(f"{'CUDA' if cuda else 'CPU fallback'}: row {row} ({ROWS[row][1]}), data {data_dir}, FID n={fid_n}")

    rows = measure(device, row, ["fp32", "bf16", "bf16+cl"] if cuda else ["fp32"], out)
    fastest = min(rows, key=lambda r: r["step ms"])
    main_row = rows[0]
    log(f"measured; fastest variant {fastest['variant']} ({fastest['images/s']:.0f} images/s)")

    from latentprior.evaluation import InceptionWeightsError, inception_weights_path

    try:
        inception_weights_path()
        have_inception = True
    except InceptionWeightsError:
        have_inception = False
    fid_reserve = (60 if cuda else 20) + (30 if have_inception else 10) + (fid_n / 200 if have_inception else 0)
    seconds = args.budget_s - elapsed() - fid_reserve - 30  # 30 s: model build, data load, final checkpoint
    run_dir = out.parent / (out.name + "_run") if out.name else Path("runs/gpu_check_run")
    shutil.rmtree(run_dir, ignore_errors=True)
    trained = run_training(device, ROWS[row][1], data_dir, fastest, max(seconds, 10.0), run_dir)
    log(f"trained: {json.dumps({k: v for k, v in trained.items() if k != 'metrics'}, default=str)}")
    for name in ("metrics.jsonl", "samples/samples.png"):
        if (run_dir / name).exists():
            shutil.copy(run_dir / name, out / Path(name).name)

    fid: dict = {"n": fid_n}
    if have_inception:
        from latentprior.evaluation import evaluate_run

        record = evaluate_run(run_dir, ["fid"], n=fid_n, data_dir=data_dir, progress=False)["fid"]
        fid.update(value=record["value"], elapsed_s=record.get("elapsed_s"))
        (out / "fid.json").write_text(json.dumps(record, indent=1, default=str))
    else:
        path = save_samples(run_dir, fid_n, out)
        fid.update(value=None, samples=str(path), note="Inception weights absent here: score the samples with "
                   f"python benchmarks/gpu_check.py --fid-from-samples {path.name} --data-dir ../shared/data")
    log(f"FID: {fid}")
    summary = {"device": str(device), "throughput": rows, "training": trained, "fid": fid, "wall_s": elapsed(),
               "utilisation": main_row["utilisation"], "images_per_s": main_row["images/s"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"images_per_s={main_row['images/s']:.1f} (fp32, {row}); "
          f"best {fastest['images/s']:.1f} ({fastest['variant']})")
    print(f"fid={fid['value']}")
    print(f"utilisation={main_row['utilisation']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
