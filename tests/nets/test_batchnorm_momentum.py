"""net.bn_momentum reaches every BatchNorm of the encoder and decoder of every arch (Dai & Wipf: moving averages
decayed by 0.999, PyTorch momentum 0.001), and the default is PyTorch's 0.1."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentprior.config import config_from_dict
from latentprior.models.build import build_model
from latentprior.nets import ARCHS, build_decoder, build_encoder

D = 6


def _norms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _pair(arch: str, **kw) -> tuple[nn.Module, nn.Module]:
    c = 2 if ARCHS[arch].conditional else 1  # a conditional encoder reads [x, y]
    return (build_encoder(arch, c, 28, 2 * D, width=0.25, **kw),
            build_decoder(arch, D, 1, 28, width=0.25, **kw))


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_bn_momentum_reaches_every_batchnorm_of_the_net(arch):
    enc, dec = _pair(arch, bn_momentum=0.001)
    default = _norms(_pair(arch)[0]) + _norms(_pair(arch)[1])
    norms = _norms(enc) + _norms(dec)
    assert len(norms) == len(default)
    assert all(m.momentum == 0.001 for m in norms) and all(m.momentum == 0.1 for m in default)
    if arch in ("infogan", "conv4", "resnet"):
        assert len(norms) >= 3  # the check is not vacuous for the nets that carry BatchNorm


def test_a_training_forward_moves_the_running_mean_by_the_momentum():
    enc, _ = _pair("infogan", bn_momentum=0.001)
    first = _norms(enc)[0]  # BatchNorm2d after the second convolution
    seen = {}
    first.register_forward_hook(lambda m, i, o: seen.setdefault("x", i[0].detach()))
    enc.train()(torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    batch_mean = seen["x"].mean((0, 2, 3))
    torch.testing.assert_close(first.running_mean, 0.001 * batch_mean)  # from its initial 0


def test_the_config_sets_the_momentum_of_the_models_nets_only():
    cfg = config_from_dict({"data": {"name": "mnist"}, "net": {"arch": "infogan", "width": 0.125, "bn_momentum": 0.001},
                            "prior": {"kind": "adversarial", "layers": 1, "hidden": 8}, "model": {"latent_dim": D},
                            "objective": {"kind": "aae"}})
    model = build_model(cfg, (1, 28, 28))
    assert {m.momentum for m in _norms(model.encoder) + _norms(model.decoder)} == {0.001}
    assert {m.momentum for m in _norms(model.prior)} == {0.1}  # the adversarial prior's MLP is not the net
