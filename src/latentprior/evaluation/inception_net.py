"""The FID Inception network rebuilt in eager PyTorch for speed, from the TorchScript file's own parameters.

The TorchScript graph (``default_1.pt``, the TF "2015-12-05" InceptionV3 port) runs every convolution as
``relu(batch_norm(conv(x), mean, var, beta, eps=1e-3))`` in NCHW, one branch at a time. This module computes
the same function, rewritten so that it is equal in real arithmetic and differs in float32 only by rounding
(features agree to ~1e-5 relative; asserted by the tests and the benchmark):

1. **Batch norm folded into the convolution**: ``W' = W / sqrt(var + eps)``,
   ``b' = beta - mean / sqrt(var + eps)``.
2. **ReLU fused into the convolution** (oneDNN post-op, ``mkldnn::_convolution_pointwise``) on the CPU: the
   separate activation pass over every feature map was ~15% of the time. Elsewhere: ``relu(conv2d(...))``.
3. **Sibling 1×1 convolutions merged**: in each mixed block the 1×1 convolutions that read the block input are
   one GEMM with their output channels concatenated, split afterwards.
4. **Grayscale folded into the first convolution**: a grayscale image repeated to three channels meets the
   first filter as ``sum_c W[:, c] * x``, so the filter summed over its input channels sees the single
   channel (and the resize before it handles one channel instead of three).
5. **channels_last** activations, so oneDNN needs no layout reorders between layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FoldedInceptionV3"]

_BN_EPS = 1e-3  # the TorchScript graph's batch-norm epsilon
# oneDNN's fused convolution + post-op (what inductor lowers to on the CPU); absent in builds without oneDNN.
_FUSED = (getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
          if torch.backends.mkldnn.is_available() else None)


def _folded(ts_conv) -> tuple[Tensor, Tensor, tuple[int, int], tuple[int, int]]:
    """(weight, bias, stride, padding) of one TorchScript ``Conv2dLayer`` with its batch norm folded in."""
    inv_std = (ts_conv.var.double() + _BN_EPS).rsqrt()
    w = ts_conv.weight.double() * inv_std[:, None, None, None]
    b = ts_conv.beta.double() - ts_conv.mean.double() * inv_std
    stride = int(ts_conv.stride)
    pad = ts_conv.padding
    pad = (int(pad[0]), int(pad[1])) if isinstance(pad, list | tuple) else (int(pad), int(pad))
    return w.float(), b.float(), (stride, stride), pad


class _Conv(nn.Module):
    """relu(conv(x, W') + b'): one (or several merged) TorchScript conv layers with batch norm folded in."""

    def __init__(self, w: Tensor, b: Tensor, stride=(1, 1), padding=(0, 0), widths: list[int] | None = None):
        super().__init__()
        self.register_buffer("weight", w.contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", b)
        self.stride, self.padding = list(stride), list(padding)
        self.widths = widths

    @classmethod
    def merged(cls, ts_convs: list) -> _Conv:
        """Sibling 1×1 convolutions on one input as one; ``forward`` then returns the per-sibling outputs."""
        parts = [_folded(c) for c in ts_convs]
        return cls(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
                   widths=[p[0].shape[0] for p in parts])

    def forward(self, x: Tensor):
        # The fused op has no autograd formula: only for inference on float32 CPU tensors.
        if (_FUSED is not None and x.device.type == "cpu" and x.dtype == torch.float32
                and not (torch.is_grad_enabled() and x.requires_grad)):
            y = _FUSED(x, self.weight, self.bias, self.padding, self.stride, [1, 1], 1, "relu", [None], None)
        else:
            y = F.relu(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))
        return y if self.widths is None else y.split(self.widths, dim=1)


def _conv(ts_conv) -> _Conv:
    return _Conv(*_folded(ts_conv))


def _chain(ts_seq, names: list[str]) -> nn.Sequential:
    return nn.Sequential(*[_conv(getattr(ts_seq, n)) for n in names])


def _avg3(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class _BlockA(nn.Module):
    """35×35 block: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avgpool→1×1."""

    def __init__(self, ts) -> None:
        super().__init__()
        self.heads = _Conv.merged([ts.conv, ts.tower.conv, ts.tower_1.conv])
        self.tower = _chain(ts.tower, ["conv_1"])
        self.tower_1 = _chain(ts.tower_1, ["conv_1", "conv_2"])
        self.pool_conv = _conv(ts.tower_2.conv)

    def forward(self, x: Tensor) -> Tensor:
        h0, h1, h2 = self.heads(x)
        return torch.cat([h0, self.tower(h1), self.tower_1(h2), self.pool_conv(_avg3(x))], 1)


class _BlockB(nn.Module):
    """35→17 reduction: 3×3/2 | 1×1→3×3→3×3/2 | maxpool/2."""

    def __init__(self, ts) -> None:
        super().__init__()
        self.conv = _conv(ts.conv)
        self.tower = _chain(ts.tower, ["conv", "conv_1", "conv_2"])

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), F.max_pool2d(x, 3, 2)], 1)


class _BlockC(_BlockA):
    """17×17 block: 1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avgpool→1×1."""

    def __init__(self, ts) -> None:
        nn.Module.__init__(self)
        self.heads = _Conv.merged([ts.conv, ts.tower.conv, ts.tower_1.conv])
        self.tower = _chain(ts.tower, ["conv_1", "conv_2"])
        self.tower_1 = _chain(ts.tower_1, ["conv_1", "conv_2", "conv_3", "conv_4"])
        self.pool_conv = _conv(ts.tower_2.conv)


class _BlockD(nn.Module):
    """17→8 reduction: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | maxpool/2."""

    def __init__(self, ts) -> None:
        super().__init__()
        self.heads = _Conv.merged([ts.tower.conv, ts.tower_1.conv])
        self.tower = _chain(ts.tower, ["conv_1"])
        self.tower_1 = _chain(ts.tower_1, ["conv_1", "conv_2", "conv_3"])

    def forward(self, x: Tensor) -> Tensor:
        h0, h1 = self.heads(x)
        return torch.cat([self.tower(h0), self.tower_1(h1), F.max_pool2d(x, 3, 2)], 1)


class _BlockE(nn.Module):
    """8×8 block: 1×1 | 1×1→{1×3, 3×1} | 1×1→3×3→{1×3, 3×1} | pool→1×1 (avg in mixed_9, max in mixed_10)."""

    def __init__(self, ts, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool  # the TF graph's quirk: the last block's branch pool is a max pool
        self.heads = _Conv.merged([ts.conv, ts.tower_conv, ts.tower_1_conv])
        self.pool_conv = _conv(ts.tower_2_conv)
        self.t_13, self.t_31 = _conv(ts.tower_mixed_conv), _conv(ts.tower_mixed_conv_1)
        self.t1_33 = _conv(ts.tower_1_conv_1)
        self.t1_13, self.t1_31 = _conv(ts.tower_1_mixed_conv), _conv(ts.tower_1_mixed_conv_1)

    def branches(self, x: Tensor) -> list[Tensor]:
        h0, a, t1 = self.heads(x)
        t1 = self.t1_33(t1)
        pooled = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg3(x)
        return [h0, self.t_13(a), self.t_31(a), self.t1_13(t1), self.t1_31(t1), self.pool_conv(pooled)]

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(self.branches(x), 1)


class FoldedInceptionV3(nn.Module):
    """The 2048-d pool features of the TorchScript Inception, computed faster (see the module docstring).

    ``forward(x)``: x (B, 3, 299, 299) or (B, 1, 299, 299) (grayscale, standing for its 3-channel repeat),
    already scaled to the network's input range [-1, 255/128 - 1] -> features (B, 2048) float32.
    """

    def __init__(self, torchscript_module: torch.jit.ScriptModule) -> None:
        super().__init__()
        L = torchscript_module.net.layers
        w, b, s, p = _folded(L.conv)
        self.conv = _Conv(w, b, s, p)
        # Grayscale shortcut: the first filter summed over its input channels (see the module docstring).
        self.conv_gray = _Conv(w.sum(1, keepdim=True), b, s, p)
        self.stem = _chain(L, ["conv_1", "conv_2"])
        self.stem2 = _chain(L, ["conv_3", "conv_4"])
        self.blocks = nn.Sequential(
            _BlockA(L.mixed), _BlockA(L.mixed_1), _BlockA(L.mixed_2), _BlockB(L.mixed_3),
            _BlockC(L.mixed_4), _BlockC(L.mixed_5), _BlockC(L.mixed_6), _BlockC(L.mixed_7),
            _BlockD(L.mixed_8), _BlockE(L.mixed_9, max_pool=False), _BlockE(L.mixed_10, max_pool=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] not in (1, 3):
            raise ValueError(f"expected 1 or 3 channels, got input of shape {tuple(x.shape)}")
        x = x.contiguous(memory_format=torch.channels_last)
        h = self.conv_gray(x) if x.shape[1] == 1 else self.conv(x)  # (B, 32, 149, 149)
        h = F.max_pool2d(self.stem(h), 3, 2)  # (B, 64, 73, 73)
        h = F.max_pool2d(self.stem2(h), 3, 2)  # (B, 192, 35, 35)
        h = self.blocks[:-1](h)  # (B, 1280, 8, 8)
        # The final 8×8 average pool, per branch of the last block: the same sums, without concatenating
        # the (B, 2048, 8, 8) map first.
        return torch.cat([F.avg_pool2d(p, 8).flatten(1) for p in self.blocks[-1].branches(h)], 1)  # (B, 2048)
