"""Attribute classifiers: one multi-label CNN per dataset and attribute set, trained on real training images.

Linear separability labels generated images with these networks, so their accuracy bounds what the metric can
see; it is measured on the test split and reported per attribute next to the majority-class rate (a 10/90
attribute is 90 % "accurate" by always saying no).

API (used by the separability metric and the disentanglement study)::

    clf, report = load_or_train_classifier(train, test, attrs, ClassifierSettings(), cache_dir=None,
                                           device="cpu", progress=True)
    p = clf.probabilities(images)       # images (B, C, H, W) float in [0, 1] -> (B, A) P(attribute)
    report["test_accuracy"][name], report["majority_rate"][name]

A trained classifier is cached under ``<cache_dir>/classifiers`` (``cache_dir`` defaults to the feature
cache's folder, ``$LATENTPRIOR_CACHE_DIR``) as ``classifier-<digest>.pt`` (tensors only, read with
``weights_only=True``) and ``classifier-<digest>.json`` (the key and the report). The key,
:func:`classifier_key`, holds everything that changes the network: dataset, the attribute set with its
thresholds, the training settings, and sha1s of the training images and labels; a stored key that differs is a
miss. Training is seeded: the same key trains the same network on the same device and thread count.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from latentprior.atomic import atomic_path, atomic_write_bytes

from .attributes import AttributeSet
from .cache import cache_key_digest, default_cache_dir
from .features import images_sha1

__all__ = ["AttributeClassifier", "ClassifierSettings", "classifier_key", "classifier_report",
           "load_or_train_classifier", "train_attribute_classifier"]

_FORMAT = 1  # bump when the network or the training procedure changes


@dataclass(frozen=True)
class ClassifierSettings:
    """Training settings (all of them enter the cache key). ``n_train``: the first n training images (None: all)."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    width: int = 16
    n_train: int | None = None
    seed: int = 0


class AttributeClassifier(nn.Module):
    """Five 3×3 conv layers (two of stride 2) with batch norm and ReLU, global average pooling, and one
    linear layer to A logits: (B, C, H, W) in [0, 1] -> (B, A)."""

    def __init__(self, in_channels: int, n_attributes: int, width: int = 16) -> None:
        super().__init__()
        chans = [in_channels, width, width, 2 * width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(5):
            stride = 2 if i in (1, 3) else 1
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride, 1, bias=False), nn.BatchNorm2d(chans[i + 1]),
                       nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(4 * width, n_attributes)
        self.shape = {"in_channels": in_channels, "n_attributes": n_attributes, "width": width}

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x * 2.0 - 1.0).mean((2, 3)))  # inputs centred on 0

    @torch.no_grad()
    def probabilities(self, images: Tensor, batch_size: int = 500) -> Tensor:
        """P(attribute) of images (N, C, H, W), float in [0, 1] or uint8: (N, A) float32 on the CPU."""
        was_training = self.training
        self.eval()
        dev = self.head.weight.device
        try:
            out = [torch.sigmoid(self(_float(images[s:s + batch_size]).to(dev))).cpu()
                   for s in range(0, images.shape[0], batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out)


def _float(x: Tensor) -> Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def classifier_key(train, attrs: AttributeSet, settings: ClassifierSettings) -> dict:
    """The cache key: everything that changes the trained classifier."""
    n = len(train) if settings.n_train is None else min(settings.n_train, len(train))
    return {"kind": "attribute_classifier", "format": _FORMAT, "dataset": train.name, "split": train.split,
            "attributes": attrs.key(), "settings": dataclasses.asdict(settings), "n_train": n,
            "images_sha1": images_sha1(train.images[:n]), "labels_sha1": _labels_sha1(train, n)}


def _labels_sha1(train, n: int) -> str:
    h = hashlib.sha1()
    for t in (train.labels, train.attributes):
        if t is not None:
            h.update(t[:n].cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_attribute_classifier(train, attrs: AttributeSet, settings: ClassifierSettings = ClassifierSettings(),
                               *, device: torch.device | str = "cpu", progress: bool = True) -> AttributeClassifier:
    """A classifier of ``attrs`` trained with Adam on binary cross-entropy over the first ``n_train`` images."""
    n = len(train) if settings.n_train is None else min(settings.n_train, len(train))
    images, labels = train.images[:n], attrs.labels(train, n)  # (n, C, H, W) uint8, (n, A)
    g = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        net = AttributeClassifier(images.shape[1], len(attrs), settings.width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    steps_per_epoch = -(-n // settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=settings.epochs * steps_per_epoch)
    net.train()
    bar = tqdm(total=settings.epochs * steps_per_epoch, desc="attribute classifier", disable=not progress)
    for _ in range(settings.epochs):
        order = torch.randperm(n, generator=g)
        for s in range(0, n, settings.batch_size):
            idx = order[s:s + settings.batch_size]
            x, y = _float(images[idx]).to(device), labels[idx].to(device)
            loss = F.binary_cross_entropy_with_logits(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    return net.eval()


def classifier_report(net: AttributeClassifier, test, attrs: AttributeSet) -> dict:
    """Test accuracy per attribute (threshold 0.5), with the positive rate and the majority-class rate."""
    y = attrs.labels(test).bool()  # (N, A)
    pred = net.probabilities(test.images) >= 0.5
    pos = y.float().mean(0)
    acc = (pred == y).float().mean(0)
    names = attrs.names
    return {"attributes": list(names), "n_test": int(y.shape[0]), "split": test.split,
            "test_accuracy": {a: round(float(v), 5) for a, v in zip(names, acc, strict=True)},
            "positive_rate": {a: round(float(v), 5) for a, v in zip(names, pos, strict=True)},
            "majority_rate": {a: round(float(max(v, 1 - v)), 5) for a, v in zip(names, pos, strict=True)},
            "mean_test_accuracy": round(float(acc.mean()), 5)}


def _paths(cache_dir, key: dict) -> tuple[Path, Path]:
    root = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "classifiers"
    stem = f"classifier-{cache_key_digest(key)}"
    return root / f"{stem}.pt", root / f"{stem}.json"


def _load(weights: Path, meta: Path, key: dict, device) -> tuple[AttributeClassifier, dict] | None:
    if not (weights.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
        if info.get("key") != json.loads(json.dumps(key)):
            return None
        net = AttributeClassifier(**info["shape"])
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (OSError, ValueError, KeyError, RuntimeError, TypeError):
        return None  # unreadable or foreign: retrain and overwrite
    return net.to(device).eval(), info["report"]


def load_or_train_classifier(train, test, attrs: AttributeSet, settings: ClassifierSettings = ClassifierSettings(),
                             *, cache_dir: str | os.PathLike[str] | None = None,
                             device: torch.device | str = "cpu", progress: bool = True,
                             ) -> tuple[AttributeClassifier, dict]:
    """The cached classifier for (train, attrs, settings), trained and stored on a miss; and its report."""
    key = classifier_key(train, attrs, settings)
    weights, meta = _paths(cache_dir, key)
    hit = _load(weights, meta, key, device)
    if hit is not None:
        return hit
    t0 = time.perf_counter()
    net = train_attribute_classifier(train, attrs, settings, device=device, progress=progress)
    report = classifier_report(net, test, attrs) | {"train_s": round(time.perf_counter() - t0, 1),
                                                    "n_train": key["n_train"], "settings": key["settings"]}
    with atomic_path(weights) as tmp:
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, tmp)
    info = {"key": key, "shape": net.shape, "report": report}
    atomic_write_bytes(meta, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
    return net, report
