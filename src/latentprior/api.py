"""The Python API: train your own model with the whole run machinery, load it back, evaluate it.

    trainer = Trainer("runs/mine", objective="vae", train=TrainConfig(epochs=5, batch_size=64))
    trainer.fit(model, images)        # the run directory `latentprior train` makes; called again: resumes
    load("runs/mine", model)          # the checkpoint's weights back into your modules
    evaluate(model, ["fid"], reference=test_images, n=1000, run_dir="runs/mine")

:class:`Trainer` is a thin layer over :func:`latentprior.training.train`, the function behind ``latentprior
train``: it turns what it is given (a model, images in any container, a folder) into the config the run records
and the objects the run uses, and everything else — checkpoints, exact resume, the lock, the NaN guard, the
prior-only epochs, metrics.jsonl, TensorBoard, previews — is the CLI's code. docs/api.md is the reference.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from latentprior.config import (
    Config,
    DataConfig,
    ModelConfig,
    NetConfig,
    ObjectiveConfig,
    PriorConfig,
    TrainConfig,
    config_from_dict,
    eval_config_from_dict,
    load_config,
    section_from_dict,
)
from latentprior.errors import UserError

__all__ = ["Trainer", "load", "evaluate"]

PathLike = str | os.PathLike[str]


def _as_config(config: Config | PathLike | dict | None) -> Config:
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def _section(value: Any, cls: type, key: str) -> Any:
    """A config section from itself, a mapping of its fields, or (objective) the name of its kind."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str) and cls is ObjectiveConfig:
        value = {"kind": value}
    if isinstance(value, dict):
        return section_from_dict(cls, value, key)
    raise TypeError(f"{key}: expected a {cls.__name__} or a mapping of its fields, got {type(value).__name__}")


def _data(data: Any, base: DataConfig):
    """(the run's data section, the images to train on or None to load them from that section)."""
    from latentprior.data import DATASETS, ImageDataset, as_image_dataset
    from latentprior.data.load import SIZES

    if data is None:
        return base, None
    if isinstance(data, DataConfig):
        return data, None
    if isinstance(data, str) and data in DATASETS:
        return DataConfig(name=data, dir=base.dir if base.name == data else None), None
    if isinstance(data, str | os.PathLike):
        folder = base if base.name == "images" else DataConfig(name="images", path=".")
        return dataclasses.replace(folder, path=str(data)), None
    ds = data if isinstance(data, ImageDataset) else as_image_dataset(data)
    # a whole official training split passed as an object is recorded by name: `latentprior eval` finds its test split
    official = ds.name in SIZES and ds.split == "train" and len(ds) == SIZES[ds.name]["train"]
    if official:
        return DataConfig(name=ds.name, dir=base.dir if base.name == ds.name else None, condition=base.condition), ds
    return DataConfig(name="custom", condition=base.condition), ds


def _model_sections(model, base: Config) -> dict[str, Any]:
    """The net, prior and model sections: the config's, or read off a model object (models/describe.py)."""
    from latentprior.models import LatentAutoencoder
    from latentprior.models.checks import ModelContractError
    from latentprior.models.describe import describe_model

    if model is None:
        return {"net": base.net, "prior": base.prior, "model": base.model}
    if not isinstance(model, LatentAutoencoder):
        raise ModelContractError(f"the model is a {type(model).__name__}; Trainer.fit trains a LatentAutoencoder "
                                 "(latentprior.LatentAutoencoder(encoder, decoder, prior, latent_dim=D))")
    d = describe_model(model)
    return {"net": NetConfig(**d["net"]), "prior": PriorConfig(**d["prior"]), "model": ModelConfig(**d["model"])}


class Trainer:
    """Trains a model in a run directory with everything ``latentprior train`` has; :meth:`fit` again resumes.

    Args:
        run_dir: the run directory (created; a checkpoint there is resumed).
        config: a :class:`Config`, a YAML file or a mapping; default ``Config()``. With a model object only its
            data, objective and train sections are used: the model describes itself.
        objective: an :class:`ObjectiveConfig`, a mapping of its fields, or a kind (``"vae"``, ``"aae"``,
            ``"factorvae"``); replaces the config's.
        train: a :class:`TrainConfig` or a mapping of its fields; replaces the config's.
    """

    def __init__(self, run_dir: PathLike, config: Config | PathLike | dict | None = None, *,
                 objective: ObjectiveConfig | dict | str | None = None, train: TrainConfig | dict | None = None):
        self.run_dir = Path(run_dir)
        self.config = _as_config(config)
        # kept apart until fit: with a model object, the config's own model sections are replaced, and rules
        # across sections (an aae objective needs an implicit prior) are checked on the sections the run records
        self.objective_config = (self.config.objective if objective is None
                                 else _section(objective, ObjectiveConfig, "objective"))
        self.train_config = self.config.train if train is None else _section(train, TrainConfig, "train")
        self.summary: dict[str, Any] | None = None
        self._model = None

    def resolve(self, model=None, data: Any = None):
        """(the config the run will record, the images it trains on or None): what :meth:`fit` passes to
        :func:`~latentprior.training.train`. A config the rules refuse raises its one-line ConfigError here."""
        data_cfg, images = _data(data, self.config.data)
        cfg = Config(data=data_cfg, objective=self.objective_config, train=self.train_config,
                     **_model_sections(model, self.config))
        return cfg, images

    def fit(self, model=None, data: Any = None, *, max_steps: int | None = None) -> dict[str, Any]:
        """Train ``model`` (default: the config's, with the factories it names) on ``data`` (default: the config's)
        up to the budget or global step ``max_steps``; resume when the run directory holds a checkpoint.

        ``model``: a :class:`~latentprior.LatentAutoencoder` of your modules (e.g. from
        :func:`~latentprior.build_model` with ``encoder=``/``decoder=``/``prior=``). ``data``: an ImageDataset, a
        tensor or array of images, a torch Dataset, a folder of images (str or Path), a dataset name or a
        :class:`DataConfig`. A resume must be given a model of the same architecture (else one line) and the same
        images. Returns the run's summary (steps, images/s, wall time, last metrics).
        """
        from latentprior.training import train

        cfg, images = self.resolve(model, data)
        self.summary = train(cfg, self.run_dir, max_steps=max_steps, data=images, model=model)
        self._model = model
        return self.summary

    @property
    def model(self):
        """The trained model: the one given to :meth:`fit`, else the run's rebuilt from its checkpoint."""
        if self._model is None:
            self._model = load(self.run_dir)
        return self._model

    def evaluate(self, metrics=("fid",), **options) -> dict[str, dict]:
        """:func:`evaluate` of the trained model, its records written into the run directory."""
        return evaluate(self.model, metrics, run_dir=self.run_dir, **options)


def load(run_dir: PathLike, model=None, *, device=None):
    """The run's trained model: its weights loaded into ``model`` (your modules, built as for training), or, without
    one, the model its config describes, rebuilt (factories must be allowed). Verified checkpoint, ``weights_only``;
    eval mode. A model of another architecture is refused in one line."""
    from latentprior.models.load import load_into, load_run

    if model is None:
        return load_run(run_dir, device=device)[0]
    return load_into(run_dir, model, device=device)


def _reference(reference: Any, model, cfg: Config | None, data_dir):
    """The reference images (an ImageDataset) for :func:`evaluate`."""
    from latentprior.data import DATASETS, as_image_dataset, load_split

    if reference is None:
        if cfg is None:
            raise UserError("evaluate(model) needs reference= (the test images to compare with) or run_dir= (a run "
                            "whose config names its data)")
        return load_split(cfg.data, "test", data_dir)
    if isinstance(reference, DataConfig):
        return load_split(reference, "test", data_dir)
    if isinstance(reference, str) and reference in DATASETS:
        return load_split(DataConfig(name=reference), "test", data_dir)
    if isinstance(reference, str | os.PathLike):  # a folder: its test split, at the model's image size
        import torch

        c, h, _ = model.sample(1, generator=torch.Generator().manual_seed(0)).shape[1:]
        return load_split(DataConfig(name="images", path=str(reference), resolution=h, channels=c), "test")
    return as_image_dataset(reference, split="test")


def _run_config(model, run_dir) -> Config | None:
    from latentprior.models.describe import describe_model
    from latentprior.rundir import read_run_config

    if run_dir is not None:
        saved = read_run_config(run_dir, strict=True)
        if saved is not None:
            return config_from_dict(saved)
    try:
        d = describe_model(model)
    except (AttributeError, TypeError, ValueError):  # not one of our models: metrics that read the config refuse
        return None
    return Config(data=DataConfig(name="custom"), net=NetConfig(**d["net"]), prior=PriorConfig(**d["prior"]),
                  model=ModelConfig(**d["model"]))


def evaluate(model_or_run, metrics=("fid",), *, n: int | None = None, reference: Any = None,
             run_dir: PathLike | None = None, device=None, data_dir: PathLike | None = None,
             weights_dir: PathLike | None = None, cache_dir: PathLike | None = None, progress: bool = True,
             prior: str | None = None, **options) -> dict[str, dict]:
    """Metrics of the registry ``latentprior eval`` uses, for a run directory or a model object.

    ``model_or_run``: a run directory (its model rebuilt, its config's test split the reference, records written
    to ``eval/``) or a model. ``reference``: the images to compare with — images in any container
    ``Trainer.fit`` takes, a dataset name or :class:`DataConfig` (its test split), a folder (its test split) —
    default the run's. ``run_dir`` (with a model): the run whose config and ``eval/`` folder to use. ``prior``
    (with a run directory): a prior fitted into the run (:func:`fit_run_prior`) in place of its own, records in
    ``RUN_DIR/priors/<name>/eval/``. ``n`` and ``options`` are :class:`EvalConfig` fields (``n_ref``,
    ``batch_size``, ``seed``, ``temperature``, ...). Returns ``{metric: record}``; records hold the value and the
    whole protocol.
    """
    from latentprior.evaluation.runner import evaluate_model, evaluate_run
    from latentprior.models.expost import use_run_prior
    from latentprior.models.load import load_run

    fields = {**options, "metrics": [metrics] if isinstance(metrics, str) else list(metrics)}
    eval_cfg = eval_config_from_dict(fields if n is None else {**fields, "n": n})
    kw = {"weights_dir": weights_dir, "cache_dir": None if cache_dir is None else str(cache_dir),
          "progress": progress}
    if isinstance(model_or_run, str | os.PathLike):
        if reference is None:
            return evaluate_run(model_or_run, eval_cfg, data_dir=data_dir, device=device, prior=prior, **kw)
        run_dir, (model_or_run, _) = model_or_run, load_run(model_or_run, device=device)
        use_run_prior(model_or_run, run_dir, prior)
    elif prior is not None:
        raise UserError(f"evaluate(model, prior={prior!r}): a fitted prior is read from its run; pass the run "
                        "directory instead of the model")
    model = model_or_run if device is None else model_or_run.to(device)
    cfg = _run_config(model, run_dir)
    ref = _reference(reference, model, cfg if run_dir is not None else None, data_dir)
    return evaluate_model(model, eval_cfg, reference=ref, run_config=cfg, run_dir=run_dir, data_dir=data_dir,
                          prior=prior, **kw)
