"""Our training step and loop against pythae's on the same VAE: same encoder/decoder layers, batch, optimizer.

    python benchmarks/vs_pythae.py [--device auto] [--threads N] [--rounds 2] [--quick] [--no-trainer]

pythae is a benchmark-only dependency (``pip install --no-deps pythae==0.1.2 && pip install pydantic imageio``:
its declared dependencies would otherwise be resolved against the pinned torch). The model is the standard
VAE: N(0, I) prior, beta = 1, our encoder/decoder of the config's net (wrapped as pythae's ``BaseEncoder``/
``BaseDecoder``), latent 64, Adam lr 1e-4, batch 100, MSE reconstruction (pythae's ``0.5·||x − G(z)||²``
is ours at γ = 1 up to a constant). The paper's net (infogan) has a spectrally normalised encoder: pythae's
copy gets torch's own ``spectral_norm`` parametrization (what a pythae user writes; pythae has none of its own),
ours gets ours (nets/spectral_norm.py: the same function, gradient and random draws, so both start equal).

Rows, each timed in alternation (A B A B ...) after an equal warm-up:

* ``step``: one optimisation step on the same device-resident batches. Ours: ``Run.step`` (as the loop runs it)
  with our defaults; pythae: ``model(batch).loss``, then ``zero_grad``, ``backward``, ``step`` (what its
  ``BaseTrainer._optimizers_step`` does) with torch's default Adam. Like for like: fp32 both. Further rows of
  ours: ``ours NCHW`` (``train.channels_last: false``), ``ours loop adam, NCHW`` (the CPU defaults before
  fused Adam and channels_last) and ``ours bf16`` (bf16 autocast); pythae's own ``amp`` flag is CUDA-only, so
  its row stays fp32.
* ``trainer``: whole training loops, steady state (after the first 10 steps): our ``train()`` with our defaults
  against pythae's ``BaseTrainer`` with its DataLoader (per-image ``__getitem__`` and collate, a ``loss.item()``
  host sync and callbacks every step), on the paper's net (infogan, width 1, 28x28) and on the CPU preset's.

The last lines are ``speedup_vs_pythae=<ours / pythae images per second>`` for the paper's net (infogan,
width 1), step row, our defaults against pythae, fp32 both (``--quick``: the CPU preset's row), and
``trainer_speedup_vs_pythae=`` for the paper net's whole loops (absent with ``--no-trainer`` or ``--quick``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import DATA_DIR, alternate, format_table, machine_lines, open_train_run, setup_device, train_images
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from latentprior.config import load_config
from latentprior.nets.registry import ARCHS, build_decoder, build_encoder
from latentprior.training.run import Run

try:
    from pythae.data.datasets import BaseDataset, DatasetOutput
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback
except ImportError:  # pragma: no cover - depends on the environment
    print("pythae is not installed; it is a benchmark-only dependency:\n"
          "  pip install --no-deps pythae==0.1.2 && pip install pydantic imageio\n"
          "(--no-deps keeps pip from re-resolving the pinned torch)", file=sys.stderr)
    sys.exit(2)

PAPER, CPU_PRESET = "configs/mnist_vae_normal.yaml", "configs/cpu/mnist_vae_normal.yaml"
LIKE_PYTHAE = {"objective.lr": 1e-4, "objective.beta": 1.0, "prior.kind": "normal", "train.batch_size": 100}


class _Encoder(BaseEncoder):
    """Our ConvEncoder as pythae's encoder: (B, 2D) features split into mean and log-variance."""

    def __init__(self, net: torch.nn.Module, latent_dim: int) -> None:
        BaseEncoder.__init__(self)
        self.net, self.latent_dim = net, latent_dim

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.net(x)
        return ModelOutput(embedding=h[:, : self.latent_dim], log_covariance=h[:, self.latent_dim:])


class _Decoder(BaseDecoder):
    def __init__(self, net: torch.nn.Module) -> None:
        BaseDecoder.__init__(self)
        self.net = net

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.net(z))


def pythae_vae(cfg_path: str, device: torch.device, overrides: dict | None = None) -> VAE:
    """pythae's VAE around our encoder/decoder of the config's ``net`` (the same arch, width and output), the
    encoder spectrally normalised by torch's parametrization where the net calls for it."""
    cfg = load_config(Path(__file__).resolve().parents[1] / cfg_path).replace(**(overrides or {}))
    d, net = cfg.model.latent_dim, cfg.net
    torch.manual_seed(cfg.train.seed)
    body = build_encoder(net.arch, 1, 28, 2 * d, width=net.width, spectral_norm=False)
    if ARCHS[net.arch].spectral_norm if net.spectral_norm is None else net.spectral_norm:
        for m in list(body.modules()):  # in module order, as ours: the same draws of u and v
            if isinstance(m, nn.Conv2d | nn.Linear):
                torch_spectral_norm(m)
    enc = _Encoder(body, d)
    dec = _Decoder(build_decoder(net.arch, d, 1, 28, width=net.width, output=net.output))
    vae = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=d, reconstruction_loss="mse"), encoder=enc, decoder=dec)
    return vae.to(device).train()


class PythaeStep:
    """One pythae optimisation step on the same batches as ours."""

    def __init__(self, cfg_path: str, ours: Run, device: torch.device, overrides: dict | None = None) -> None:
        self.model = pythae_vae(cfg_path, device, overrides)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.ours, self.i = ours, 0
        n_ours = sum(p.numel() for p in ours.model.autoencoder_parameters())
        n_theirs = sum(p.numel() for p in self.model.parameters())
        assert n_ours == n_theirs, f"different models: {n_ours} vs {n_theirs} parameters"

    def __call__(self) -> None:
        x = self.ours.data.batch(self.ours.sampler.indices(self.i))
        self.i += 1
        out = self.model(DatasetOutput(data=x))
        self.optimizer.zero_grad()
        out.loss.backward()
        self.optimizer.step()


def step_rows(label: str, cfg_path: str, data, device, rounds: int, fast: bool, min_total_s: float = 0.0,
              overrides: dict | None = None) -> list[dict]:
    like = {**LIKE_PYTHAE, **(overrides or {})}
    ours = open_train_run(cfg_path, data, device, **like)  # the defaults: what speedup_vs_pythae reports
    cands = {"ours": ours.step, "pythae": PythaeStep(cfg_path, ours, device, overrides)}
    if fast:  # our other options, beside the defaults
        for name, opts in (("ours NCHW", {"train.channels_last": False}),
                           ("ours loop adam, NCHW", {"train.adam_impl": "loop", "train.channels_last": False}),
                           ("ours bf16", {"train.amp": "bf16"})):
            cands[name] = open_train_run(cfg_path, data, device, **like, **opts).step
    times = alternate(cands, device, rounds, min_total_s=min_total_s)
    b, rows = ours.cfg.train.batch_size, []
    for name in [k for k in cands if k != "pythae"]:
        ratio = statistics.median(p / o for o, p in zip(times[name], times["pythae"], strict=True))
        rows.append({"row": f"step, {label}", "ours": name, "ours images/s": b / statistics.median(times[name]),
                     "pythae images/s": b / statistics.median(times["pythae"]), "ours/pythae": ratio,
                     "rounds": len(times[name])})
    return rows


class _StepClock(TrainingCallback):
    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_step_end(self, training_config, **kwargs) -> None:
        self.stamps.append(time.perf_counter())


def _pythae_trainer(cfg_path: str, images: torch.Tensor, steps: int, device, out: Path) -> float:
    clock = _StepClock()
    model = pythae_vae(cfg_path, device)
    data = BaseDataset(images[: steps * 100].float() / 255, torch.zeros(steps * 100))
    tc = BaseTrainerConfig(output_dir=str(out), num_epochs=1, per_device_train_batch_size=100, learning_rate=1e-4,
                           optimizer_cls="Adam", no_cuda=device.type != "cuda", steps_saving=None)
    for name in list(logging.Logger.manager.loggerDict):  # its module loggers print INFO to stdout themselves
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    quiet = io.StringIO()
    with contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):  # its bars and logs: drawn, not shown
        try:
            BaseTrainer(model, data, training_config=tc, callbacks=[clock]).train()
        except RuntimeError as e:
            # After the last step pythae saves the model with cloudpickle, which torch refuses for a
            # parametrized (spectrally normalised) module; the timed steps are over by then.
            if "parametrized modules" not in str(e) or len(clock.stamps) != steps:
                raise
    s = clock.stamps
    return 100 * (len(s) - 11) / (s[-1] - s[10])  # steady state: after 10 steps


def _our_trainer(cfg_path: str, steps: int, device, out: Path) -> float:
    from latentprior.rundir import read_metrics
    from latentprior.training import train

    cfg = load_config(Path(__file__).resolve().parents[1] / cfg_path).replace(**LIKE_PYTHAE, **{
        "data.dir": str(DATA_DIR), "train.log_every": 10, "train.progress": False, "train.device": str(device),
        "train.checkpoint_every": 10**6, "train.threads": None})
    train(cfg, out, max_steps=steps)
    logs = read_metrics(out)[1:]  # the first window holds the warm-up step
    return statistics.mean(r["images_per_s"] for r in logs)


def trainer_rows(label: str, cfg_path: str, device, rounds: int, steps: int = 40) -> list[dict]:
    images = train_images("mnist", device)[0].images
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):  # A B, B A, ... (see common.alternate)
            runs = [lambda r=r: ours.append(_our_trainer(cfg_path, steps, device, Path(tmp) / f"ours{r}")),
                    lambda r=r: theirs.append(_pythae_trainer(cfg_path, images, steps, device,
                                                              Path(tmp) / f"pythae{r}"))]
            for run in runs if r % 2 == 0 else runs[::-1]:
                run()
    ratio = statistics.median(o / p for o, p in zip(ours, theirs, strict=True))
    return [{"row": f"trainer, {label}", "ours": "train()", "ours images/s": statistics.median(ours),
             "pythae images/s": statistics.median(theirs), "ours/pythae": ratio, "rounds": rounds}]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads, the same for both (default: torch's)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="CPU preset only (no paper-width row)")
    p.add_argument("--no-trainer", action="store_true", help="skip the whole-trainer row")
    p.add_argument("--no-fast", action="store_true", help="skip the rows with our other speed options")
    args = p.parse_args(argv)
    device = setup_device(args.device, args.threads)
    data, source = train_images("mnist", device)
    rows = []
    if not args.quick:
        rows += step_rows("paper MNIST, infogan", PAPER, data, device, args.rounds, not args.no_fast)
        rows += step_rows("paper MNIST, conv4", PAPER, data, device, args.rounds, not args.no_fast,
                          overrides={"net.arch": "conv4"})
    rows += step_rows("CPU preset (width 0.125)", CPU_PRESET, data, device, args.rounds, not args.no_fast,
                      min_total_s=10.0)
    if not args.no_trainer:
        if not args.quick:
            rows += trainer_rows("paper MNIST, infogan", PAPER, device, args.rounds)
        rows += trainer_rows("CPU preset (width 0.125)", CPU_PRESET, device, args.rounds)
    print("\n".join(machine_lines(device)))
    print(f"# data: {source}; VAE N(0, I), beta 1, latent 64, batch 100, Adam lr 1e-4; pythae 0.1.2")
    print(format_table(rows, ["row", "ours", "ours images/s", "pythae images/s", "ours/pythae", "rounds"]))
    main_row = next(r for r in rows if r["ours"] == "ours")
    print(f"# speedup line: {main_row['row']}, fp32 both")
    print(f"speedup_vs_pythae={main_row['ours/pythae']:.3f}")
    loop_row = next((r for r in rows if r["row"] == "trainer, paper MNIST, infogan"), None)
    if loop_row is not None:
        print(f"trainer_speedup_vs_pythae={loop_row['ours/pythae']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
