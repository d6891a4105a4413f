"""Training, sampling and FID-feature throughput, with achieved FLOP/s and utilisation of this machine.

    python benchmarks/throughput.py [--device auto] [--threads N] [--variants fp32,bf16+cl] [--quick]
                                    [--rows mnist_flow,...] [--json OUT.json]
    python benchmarks/throughput.py --check-compile      # torch.compile: compile time, speed, loss agreement
    python benchmarks/throughput.py --gpu-only           # only the GPU table (CUDA)

Each training row is one step of the loop (all updates of the objective) for a config, per variant of the
speed options (``fp32`` the defaults, fused Adam and channels_last; ``nchw`` and ``loopadam`` without one of
them; ``bf16``/``fp16`` autocast, ``compile``), the variants of a row timed in alternation. FLOPs are counted
by ``torch.utils.flop_counter`` over one full step (matmuls and convolutions, forward and backward) of an
uncompiled twin. The twin has no R1 penalty (the AAE preset's
``torch.autograd.grad`` cannot run under the counter's module hooks), so AAE rows' FLOPs and utilisation are
lower bounds: by 0.6% on cpu_mnist_aae, counted once without the hooks (the penalty's double backward runs
through the small latent-space discriminator only). Utilisation is achieved FLOP/s over the FLOP/s of a large
``torch.mm`` (fp32; bf16 for bf16 rows) timed in the same alternation as the row, so both see the same threads
and the same load. The last line is ``utilisation=<fraction>`` for the paper's MNIST VAE + flow prior, first variant.

With CUDA a GPU table follows (otherwise the line "no CUDA device: GPU table skipped"): the paper's MNIST VAE +
flow prior with the infogan and conv4 nets, and its prior-only step, per variant: ``eager`` (fused Adam, no
graphs), ``graphs`` (``train.cuda_graphs: on``, the CUDA default), ``graphs+bf16``; images/s, the ratio to eager,
utilisation, and the paper-budget run (200 + 100 epochs) projected from the measured step times. On a CUDA
machine ``fp32`` means the defaults, i.e. captured steps; ``eager`` turns the capture off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from common import (
    PeakMemory,
    alternate,
    count_flops,
    format_table,
    machine_lines,
    matmul_probe,
    open_train_run,
    setup_device,
    train_images,
)

from latentprior.training.cuda_graphs import WARMUP

# name -> (dataset, config, overrides). "without the flow": the standard VAE, N(0, I) prior at beta = 1 (a fixed
# prior has no prior-only epochs).
ROWS: dict[str, tuple[str, str, dict]] = {
    "mnist_flow": ("mnist", "configs/mnist_vae_flow.yaml", {}),
    "mnist_normal": ("mnist", "configs/mnist_vae_normal.yaml", {}),
    "cifar10_flow": ("cifar10", "configs/cifar10_vae_flow.yaml", {}),
    "cifar10_normal": ("cifar10", "configs/cifar10_vae_flow.yaml", {"prior.kind": "normal", "objective.beta": 1.0,
                                                                    "train.prior_epochs": 0}),
    "cpu_mnist_flow": ("mnist", "configs/cpu/mnist_vae_flow.yaml", {}),
    "cpu_mnist_normal": ("mnist", "configs/cpu/mnist_vae_normal.yaml", {}),
    "cpu_mnist_aae": ("mnist", "configs/cpu/mnist_aae_adv.yaml", {}),
    # Per arch (net.arch): the paper configs and the CPU presets use infogan; each beside conv4.
    "mnist_flow_conv4": ("mnist", "configs/mnist_vae_flow.yaml", {"net.arch": "conv4"}),
    "cpu_mnist_flow_conv4": ("mnist", "configs/cpu/mnist_vae_flow.yaml", {"net.arch": "conv4"}),
    "cpu_mnist_flow_resnet": ("mnist", "configs/cpu/mnist_vae_flow.yaml", {"net.arch": "resnet"}),
    # A step of the prior-only epochs (no joint epochs: every step is one), for the paper-budget projection.
    "mnist_flow_prior_phase": ("mnist", "configs/mnist_vae_flow.yaml", {"train.epochs": 0}),
}
QUICK = ["mnist_flow", "cpu_mnist_flow", "cpu_mnist_normal"]
# fp32: the defaults (fused Adam, channels_last); nchw and loopadam turn one of them off (the CPU defaults before)
VARIANT_KEYS = {"fp32": {}, "cl": {"train.channels_last": True}, "nchw": {"train.channels_last": False},
                "bf16": {"train.amp": "bf16"}, "fp16": {"train.amp": "fp16"}, "compile": {"train.compile": True},
                "eager": {"train.cuda_graphs": "off"}, "graphs": {"train.cuda_graphs": "on"},
                "fusedadam": {"train.adam_impl": "fused"}, "loopadam": {"train.adam_impl": "loop"}}
# The GPU table: the paper's MNIST model with each net, and its prior-only step; eager, captured, captured + bf16.
GPU_ROWS = ["mnist_flow", "mnist_flow_conv4", "mnist_flow_prior_phase"]
GPU_VARIANTS = ["eager", "graphs", "graphs+bf16"]
PAPER_EPOCHS = (200, 100)  # configs/mnist_vae_flow.yaml: joint epochs, then prior-only epochs


def variant_overrides(spec: str) -> dict:
    out: dict = {}
    for part in spec.split("+"):
        if part not in VARIANT_KEYS:
            raise SystemExit(f"unknown variant part '{part}' in '{spec}'; parts: {sorted(VARIANT_KEYS)}")
        out.update(VARIANT_KEYS[part])
    return out


def _with_peaks(candidates: dict, dtypes: set[str], device, rounds: int) -> tuple[dict, dict]:
    """Time ``candidates`` and the matmul probes of ``dtypes`` in one alternation: (times, FLOP/s peaks)."""
    probes = {d: matmul_probe(device, {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[d])
              for d in dtypes}
    times = alternate({**candidates, **{f"matmul {d}": fn for d, (fn, _) in probes.items()}}, device, rounds,
                      min_total_s=6.0)
    peaks = {d: flops / statistics.median(times.pop(f"matmul {d}")) for d, (_, flops) in probes.items()}
    return times, peaks


def _precision(variant: str) -> str:
    return "bf16" if "bf16" in variant else "fp16" if "fp16" in variant else "fp32"


def _flop_twin(cfg_path: str, data, device, options: dict):
    """A run doing the arithmetic of the row's run that ``FlopCounterMode`` can count.

    A compiled model's first calls must not run under the counter (a dispatch mode dynamo then compiles around,
    or gives up on), so the twin is eager. The R1 penalty's ``torch.autograd.grad`` fails inside the counter's
    module hooks, so the twin has none: the penalty's FLOPs are not counted.
    """
    return open_train_run(cfg_path, data, device, **{**options, "train.compile": False, "objective.r1_penalty": 0.0,
                                                     "train.cuda_graphs": "off"})  # a replayed graph is not seen


def training_rows(names: list[str], variants: list[str], device, rounds: int) -> list[dict]:
    rows, images = [], {}
    for name in names:
        dataset, cfg_path, overrides = ROWS[name]
        if dataset not in images:
            images[dataset] = train_images(dataset, device)
        data, source = images[dataset]
        runs, flops, mem = {}, {}, {}
        for v in variants:
            options = {**overrides, **variant_overrides(v)}
            with PeakMemory(device) as pm:  # the model, its optimizer state and one step (and compilation)
                runs[v] = open_train_run(cfg_path, data, device, **options)
                for _ in range(WARMUP + 2 if runs[v].graphed else 1):  # a captured step: warm-up, capture, replay
                    runs[v].step()
            mem[v] = pm.mib
            flops[v] = count_flops(_flop_twin(cfg_path, data, device, options).step)
        times, peaks = _with_peaks({v: r.step for v, r in runs.items()}, {_precision(v) for v in variants}, device,
                                   rounds)
        for v in variants:
            s = statistics.median(times[v])
            peak = peaks[_precision(v)]
            b = runs[v].cfg.train.batch_size
            rows.append({"row": name, "variant": v, "images/s": b / s, "step ms": 1e3 * s,
                         "GFLOP/img": flops[v] / b / 1e9, "achieved GFLOP/s": flops[v] / s / 1e9,
                         "utilisation": flops[v] / s / peak, "peak GFLOP/s": peak / 1e9, "+MiB": mem[v],
                         "data": source,
                         "config": ROWS[name][1] + "".join(f" {k}={x}" for k, x in overrides.items())})
        del runs
    return rows


def gpu_table(device, rounds: int) -> list[dict]:
    """The GPU table (CUDA only): :data:`GPU_ROWS` x :data:`GPU_VARIANTS`, printed with the speed-up over eager
    and the paper-budget run time projected from the measured joint and prior-only steps."""
    if device.type != "cuda":
        print("no CUDA device: GPU table skipped")
        return []
    torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest algorithms once
    rows = training_rows(GPU_ROWS, GPU_VARIANTS, device, rounds)
    eager = {r["row"]: r["images/s"] for r in rows if r["variant"] == "eager"}
    for r in rows:
        r["x eager"] = r["images/s"] / eager[r["row"]]
    print(format_table(rows, ["row", "variant", "images/s", "x eager", "step ms", "achieved GFLOP/s", "utilisation",
                              "peak GFLOP/s", "+MiB"]))
    steps_per_epoch = 60000 // 100
    for v in GPU_VARIANTS:
        ms = {r["row"]: r["step ms"] for r in rows if r["variant"] == v}
        for net in ("mnist_flow", "mnist_flow_conv4"):
            minutes = steps_per_epoch * (PAPER_EPOCHS[0] * ms[net] + PAPER_EPOCHS[1] * ms["mnist_flow_prior_phase"])
            print(f"# projected paper-budget MNIST run ({PAPER_EPOCHS[0]} + {PAPER_EPOCHS[1]} epochs), {net}, {v}: "
                  f"{minutes / 6e4:.1f} min")
    best = max((r for r in rows if r["row"] == "mnist_flow"), key=lambda r: r["images/s"])
    print(f"gpu_speedup_vs_eager={best['x eager']:.3f} ({best['variant']}, mnist_flow)")
    return rows


def sampling_rows(device) -> list[dict]:
    """model.sample(n): prior draw + decoder, no grad, eval mode."""
    data, _ = train_images("mnist", device, random_n=200)
    n = 2000 if device.type == "cuda" else 100
    rows = []
    for name in ("mnist_flow", "cpu_mnist_flow"):
        model = open_train_run(ROWS[name][1], data, device).model

        def draw(model=model):
            return model.sample(n, generator=torch.Generator(device).manual_seed(0))

        flops = count_flops(draw)
        times, peaks = _with_peaks({name: draw}, {"fp32"}, device, rounds=2)
        s = statistics.median(times[name])
        rows.append({"row": f"sample {name}", "images/s": n / s, "GFLOP/img": flops / n / 1e9,
                     "achieved GFLOP/s": flops / s / 1e9, "utilisation": flops / s / peaks["fp32"],
                     "peak GFLOP/s": peaks["fp32"] / 1e9})
    return rows


def inception_rows(device) -> list[dict]:
    """FID Inception pool features (299x299, the optimised path the evaluation uses) on 28x28 digits."""
    try:
        from latentprior.evaluation.runner import make_feature_extractor

        extractor = make_feature_extractor(device)
    except Exception as e:  # weights or the evaluation package missing: say so, keep the rest of the table
        return [{"row": f"inception features: unavailable ({type(e).__name__}: {e})"}]
    b = 500 if device.type == "cuda" else 25
    x = torch.randint(0, 256, (b, 1, 28, 28), dtype=torch.uint8, device=device)
    # FlopCounterMode does not know oneDNN's fused conv+ReLU op: count on the plain path the fusion replaces
    # (the same convolutions), then time the fused one.
    from latentprior.evaluation import inception_net

    fused, inception_net._FUSED = getattr(inception_net, "_FUSED", None), None
    try:
        flops = count_flops(lambda: extractor(x))
    finally:
        inception_net._FUSED = fused
    times, peaks = _with_peaks({"inception": lambda: extractor(x)}, {"fp32"}, device, rounds=2)
    s = statistics.median(times["inception"])
    return [{"row": "inception features (FID)", "images/s": b / s, "GFLOP/img": flops / b / 1e9,
             "achieved GFLOP/s": flops / s / 1e9, "utilisation": flops / s / peaks["fp32"],
             "peak GFLOP/s": peaks["fp32"] / 1e9}]


def check_compile(device) -> None:
    """Eager vs torch.compile on the CPU preset: compile time, step time (A B A B), first losses' agreement."""
    data, source = train_images("mnist", device)
    cfg = "configs/cpu/mnist_vae_flow.yaml"
    eager = open_train_run(cfg, data, device).step
    compiled = open_train_run(cfg, data, device, **{"train.compile": True}).step
    torch.manual_seed(1)
    losses_e = [{k: v.item() for k, v in eager().items() if k.endswith("loss")} for _ in range(3)]
    torch.manual_seed(1)
    t = time.perf_counter()
    losses_c = [{k: v.item() for k, v in compiled().items() if k.endswith("loss")} for _ in range(3)]
    compile_s = time.perf_counter() - t
    rel = max(abs(c[k] - e[k]) / abs(e[k]) for e, c in zip(losses_e, losses_c, strict=True) for k in e)
    times = alternate({"eager": eager, "compile": compiled}, device, rounds=3, min_total_s=6.0)
    ratio = statistics.median(e / c for e, c in zip(times["eager"], times["compile"], strict=True))
    print("\n".join(machine_lines(device)))
    print(f"# {cfg} on {source}; first 3 steps (compile included): {compile_s:.1f} s")
    print(f"eager step {1e3 * statistics.median(times['eager']):.1f} ms, compiled step "
          f"{1e3 * statistics.median(times['compile']):.1f} ms")
    print(f"compile_speedup={ratio:.3f}")
    print(f"compile_max_rel_loss_diff={rel:.2e}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--variants", default="fp32", help="comma-separated, e.g. fp32,cl,bf16+cl,compile")
    p.add_argument("--rows", help=f"comma-separated subset of {list(ROWS)}")
    p.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-extras", action="store_true", help="skip the sampling and Inception rows")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--check-compile", action="store_true")
    p.add_argument("--gpu-only", action="store_true", help="only the GPU table (eager / graphs / graphs+bf16)")
    args = p.parse_args(argv)
    device = setup_device(args.device, args.threads)
    if args.check_compile:
        check_compile(device)
        return 0
    if args.gpu_only:
        print("\n".join(machine_lines(device)))
        rows = gpu_table(device, args.rounds)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"gpu_rows": rows, "machine": machine_lines(device)}, fh, indent=1)
        return 0
    names = args.rows.split(",") if args.rows else QUICK if args.quick else list(ROWS)
    names.sort(key=lambda n: not n.startswith("cpu_"))  # small first (see rows.sort below)
    unknown = sorted(set(names) - set(ROWS))
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows: {list(ROWS)}")
    variants = args.variants.split(",")
    for v in variants:
        variant_overrides(v)
    rows = training_rows(names, variants, device, args.rounds)
    rows.sort(key=lambda r: list(ROWS).index(r["row"]))
    extras = [] if args.no_extras else sampling_rows(device) + inception_rows(device)
    print("\n".join(machine_lines(device)))
    print(format_table(rows, ["row", "variant", "images/s", "step ms", "GFLOP/img", "achieved GFLOP/s",
                              "utilisation", "peak GFLOP/s", "+MiB", "data"]))
    print("# peak GFLOP/s: a large torch.mm (bf16 for bf16 rows) timed in the same alternation as the row")
    print("# +MiB: peak memory of building the model and its first step, above what the process held before "
          "(CUDA: allocated tensors; CPU: resident set)")
    if extras:
        print()
        print(format_table(extras, ["row", "images/s", "GFLOP/img", "achieved GFLOP/s", "utilisation",
                                    "peak GFLOP/s"]))
    print("# configs: " + "; ".join(dict.fromkeys(f"{r['row']}: {r['config']}" for r in rows)))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "extras": extras, "machine": machine_lines(device)}, fh, indent=1)
    print()
    gpu_rows = gpu_table(device, args.rounds)
    if args.json and gpu_rows:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "extras": extras, "gpu_rows": gpu_rows, "machine": machine_lines(device)}, fh,
                      indent=1)
    main_row = next((r for r in rows if r["row"] == "mnist_flow"), rows[0])
    print(f"# utilisation line: {main_row['row']} ({main_row['variant']})")
    print(f"utilisation={main_row['utilisation']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
