"""Run configuration: frozen dataclasses, one per concern, loaded from YAML with typed overrides.

Every key is checked: an unknown key, a value of the wrong type or outside its choices raises
:class:`ConfigError` naming the key and listing what is valid, so a typo never silently falls back
to a default.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from latentprior.errors import UserError

__all__ = [
    "ConfigError",
    "DataConfig",
    "NetConfig",
    "PriorConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "TrainConfig",
    "Config",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "save_config",
]


class ConfigError(ValueError, UserError):
    """A configuration key or value is invalid; the message names it and lists valid choices."""


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to train on and where its files live."""

    name: Literal["digits", "mnist", "fashion_mnist", "cifar10", "celeba"] = "mnist"
    dir: str | None = None  # None: the LATENTPRIOR_DATA_DIR environment variable
    verify: bool = True  # check files against the official checksums
    download: bool = False  # fetch missing files from the official URLs


@dataclass(frozen=True)
class NetConfig:
    """Convolutional encoder/decoder family (conv 4x4 stride 2 + BN + ReLU)."""

    width: float = 1.0  # channel multiplier on (128, 256, 512, 1024); < 1 for CPU runs
    output: Literal["sigmoid", "linear"] = "sigmoid"  # decoder mean G(z) in [0, 1] or unbounded

    def __post_init__(self) -> None:
        _check(self.width > 0, f"net.width must be > 0, got {self.width}")


@dataclass(frozen=True)
class PriorConfig:
    """p(z): fixed standard normal, RealNVP flow (appendix A.1) or adversarial MLP (appendix A.2)."""

    kind: Literal["normal", "realnvp", "adversarial"] = "realnvp"
    layers: int = 24  # flow transforms, or hidden layers of the adversarial prior MLP
    hidden: int = 1024  # width D of each coupling network / prior MLP layer
    noise_dim: int | None = None  # adversarial prior input noise; None: the latent dimension
    disc_layers: int = 2  # adversarial prior only: discriminator hidden layers
    disc_hidden: int = 1024

    def __post_init__(self) -> None:
        _check(self.layers >= 1, f"prior.layers must be >= 1, got {self.layers}")
        _check(self.hidden >= 1, f"prior.hidden must be >= 1, got {self.hidden}")
        _check(self.disc_layers >= 1, f"prior.disc_layers must be >= 1, got {self.disc_layers}")


@dataclass(frozen=True)
class ModelConfig:
    """Encoder kind, latent size and the decoder's Gaussian variance gamma."""

    latent_dim: int = 64
    encoder: Literal["gaussian", "deterministic"] = "gaussian"
    gamma: float = 1.0  # decoder variance: p(x|z) = N(G(z), gamma I); initial value when learned
    learn_gamma: bool = False  # Dai & Wipf: gamma becomes a parameter of the decoder update

    def __post_init__(self) -> None:
        _check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        _check(self.gamma > 0, f"model.gamma must be > 0, got {self.gamma}")


@dataclass(frozen=True)
class ObjectiveConfig:
    """The bilevel objective (eqs. 5-7): which one, beta, and each update's optimizer."""

    kind: Literal["vae", "aae"] = "vae"
    beta: float = 0.0  # regularization strength of q(z) in the encoder/decoder objective F
    adversarial_loss: Literal["paper", "nonsaturating"] = "paper"  # aae: eqs. 14-16 as written, or the
    # non-saturating variants (maximize log D for q in F, log(1 - D) for prior samples in f)
    lr: float = 1e-4  # Adam, encoder/decoder (and gamma)
    prior_lr: float | None = None  # None: same as lr
    disc_lr: float | None = None  # None: same as lr
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    # aae: R1 penalty (Mescheder et al. 2018) on the discriminator's gradient at encoded codes, r1/2·E_q|∇D|².
    # 0 is the paper's game; > 0 keeps D smooth where q(z) lies, so the prior's gradient stays informative.
    r1_penalty: float = 0.0

    def __post_init__(self) -> None:
        _check(self.beta >= 0, f"objective.beta must be in [0, inf), got {self.beta}")
        _check(self.r1_penalty >= 0, f"objective.r1_penalty must be in [0, inf), got {self.r1_penalty}")
        for k in ("lr", "prior_lr", "disc_lr"):
            v = getattr(self, k)
            _check(v is None or v > 0, f"objective.{k} must be > 0, got {v}")
        _check(0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1, "objective.adam_beta1/2 must be in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """The loop: budget, batching, logging, checkpointing."""

    epochs: float = 200  # joint training of encoder, decoder and prior
    prior_epochs: float = 0  # then the prior alone on the frozen encoder (paper: 50-100)
    batch_size: int = 100
    lr_halve_every: float | None = None  # epochs; CIFAR-10 in the paper halves every 250
    seed: int = 0
    log_every: int = 50  # steps between metric logs (the only host syncs of the loop)
    checkpoint_every: int = 1000  # steps between checkpoints (one is always written at the end)
    samples_every: int = 0  # steps between sample grids (0: only at the end)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch CPU threads; None: torch's default
    progress: bool = True  # tqdm progress bar
    # Speed options (training/performance.py). None of them changes the algorithm; amp changes the arithmetic
    # (tests/test_performance.py bounds the first steps' losses against fp32).
    amp: Literal["off", "bf16", "fp16"] = "off"  # autocast the updates' forward passes; fp16 adds a GradScaler
    compile: bool = False  # torch.compile encoder, decoder, prior and discriminator (state_dict keys unchanged)
    channels_last: bool = False  # NHWC memory format for the conv nets and their batches
    sync_bn: bool = False  # multi-process (torchrun) only: BatchNorm statistics over the global batch instead of
    # each process's shard; a single process is unaffected

    def __post_init__(self) -> None:
        _check(self.epochs >= 0, f"train.epochs must be >= 0, got {self.epochs}")
        _check(self.prior_epochs >= 0, f"train.prior_epochs must be >= 0, got {self.prior_epochs}")
        _check(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        _check(self.log_every >= 1, f"train.log_every must be >= 1, got {self.log_every}")
        _check(self.checkpoint_every >= 1, f"train.checkpoint_every must be >= 1, got {self.checkpoint_every}")
        _check(self.samples_every >= 0, f"train.samples_every must be >= 0, got {self.samples_every}")
        _check(self.threads is None or self.threads >= 1, f"train.threads must be >= 1 or null, got {self.threads}")


@dataclass(frozen=True)
class Config:
    """One run: everything needed to rebuild the model and continue training."""

    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.objective.kind == "aae":
            _check(self.prior.kind in ("adversarial", "normal"),
                   f"objective.kind 'aae' needs prior.kind 'adversarial' or 'normal', got '{self.prior.kind}'")
        if self.objective.kind == "vae":
            _check(self.prior.kind in ("realnvp", "normal"),
                   f"objective.kind 'vae' needs a density prior ('realnvp' or 'normal'), got '{self.prior.kind}'")
            _check(self.model.encoder == "gaussian", "objective.kind 'vae' needs model.encoder 'gaussian'")

    def replace(self, **overrides: Any) -> Config:
        """A copy with dotted-key overrides applied, e.g. ``cfg.replace(**{"objective.beta": 1.0})``."""
        return apply_overrides(self, overrides)


# --------------------------------------------------------------------------- (de)serialisation


_EXPONENT_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert ints to floats where a float is wanted."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        _check(value in choices, f"{key}: '{value}' is not valid; choose one of {list(choices)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            _check(type(None) in args, f"{key}: null is not allowed")
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if tp is bool:
        _check(isinstance(value, bool), f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads "2e-4" and "1E5" as strings: a float without a dot is still a float here.
            return float(value)
        _check(isinstance(value, int | float) and not isinstance(value, bool),
               f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        _check(isinstance(value, str), f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported annotation {tp}")  # pragma: no cover - programming error


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"section '{prefix}'" if prefix else "the top level"
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {names}")
    kwargs = {}
    for name in names:
        if name not in data:
            continue
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, data[name] if data[name] is not None else {}, key)
        else:
            kwargs[name] = _coerce(data[name], tp, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # pragma: no cover - dataclass internals
        raise ConfigError(f"{prefix}: {e}") from e


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested plain data."""
    return _build(Config, data or {}, "")


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain data (YAML/JSON-safe) that :func:`config_from_dict` turns back into ``cfg``."""
    return dataclasses.asdict(cfg)


def apply_overrides(cfg: Config, overrides: dict[str, Any] | list[str]) -> Config:
    """Apply ``section.key=value`` overrides; values in a list of strings are parsed as YAML scalars."""
    if isinstance(overrides, list):
        parsed: dict[str, Any] = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override '{item}' must look like section.key=value")
            k, v = item.split("=", 1)
            parsed[k.strip()] = yaml.safe_load(v)
        overrides = parsed
    data = config_to_dict(cfg)
    sections = [f.name for f in dataclasses.fields(Config)]
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if len(parts) != 2 or parts[0] not in sections:
            raise ConfigError(f"override key '{dotted}' must be section.key with section one of {sections}")
        section, key = parts
        if key not in data[section]:
            raise ConfigError(f"unknown key '{key}' in section '{section}'; valid keys: {list(data[section])}")
        data[section][key] = value
    return config_from_dict(data)


def load_config(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Read a YAML config file, validate it and apply overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with path.open() as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    cfg = config_from_dict(data)
    return apply_overrides(cfg, overrides) if overrides else cfg


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically: the file is either old or new, never half)."""
    from latentprior.atomic import atomic_write_bytes

    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    atomic_write_bytes(Path(path), text.encode())
