"""FactorVAE: permuted codes keep each marginal and break the dependence; gradient isolation of its two updates."""

from __future__ import annotations

import torch

from latentprior.objectives.factorvae import permute_dims


def test_permute_dims_keeps_each_marginal_and_breaks_the_dependence():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, generator=g, dtype=torch.float64)
    z = torch.stack([a, a + 0.1 * torch.randn(20000, generator=g, dtype=torch.float64),
                     torch.randn(20000, generator=g, dtype=torch.float64)], dim=1)  # (B, 3); corr(z0, z1) ≈ 0.995
    p = permute_dims(z, torch.Generator().manual_seed(1))
    for j in range(3):  # the multiset of every column is unchanged
        assert torch.equal(p[:, j].sort().values, z[:, j].sort().values)
    assert torch.corrcoef(z.T)[0, 1] > 0.99
    assert abs(torch.corrcoef(p.T)[0, 1].item()) < 0.03  # ~1/sqrt(B) for independent columns
    assert not torch.equal(p[:, 0], z[:, 0])  # each column is moved, not left in place


def test_permute_dims_uses_a_different_permutation_per_column():
    z = torch.arange(1000, dtype=torch.float64)[:, None].repeat(1, 4)  # every row holds one value four times
    p = permute_dims(z, torch.Generator().manual_seed(0))
    same_row = (p == p[:, :1]).all(1).float().mean().item()
    assert same_row < 0.01  # one shared permutation would keep every row constant


def _factorvae(tc_weight: float = 40.0):
    from latentprior.config import config_from_dict
    from latentprior.models import build_model
    from latentprior.objectives import build_objective

    cfg = config_from_dict({"data": {"name": "digits"}, "net": {"width": 0.125},
                            "prior": {"kind": "normal", "disc_layers": 1, "disc_hidden": 16},
                            "model": {"latent_dim": 4},
                            "objective": {"kind": "factorvae", "beta": 1.0, "tc_weight": tc_weight}})
    torch.manual_seed(0)
    model = build_model(cfg, (1, 28, 28))
    return model, build_objective(cfg, model)


def _encoder_grads(tc_weight: float, x: torch.Tensor) -> list[torch.Tensor]:
    model, objective = _factorvae(tc_weight)
    torch.manual_seed(1)  # the same posterior noise for every tc_weight
    update = next(objective.updates(x))
    return list(torch.autograd.grad(update.loss, list(model.encoder.parameters())))


def test_factorvae_gradient_isolation():
    model, objective = _factorvae()
    x = torch.rand(16, 1, 28, 28)
    updates = objective.updates(x)
    ae = next(updates)
    disc_params = list(model.tc_discriminator.parameters())
    assert ae.name == "autoencoder" and not {id(p) for p in ae.params} & {id(p) for p in disc_params}
    ae.loss.backward(inputs=ae.params, retain_graph=True)  # as run_updates does (kept: so a leak shows below)
    assert all(p.grad is None for p in disc_params)  # the TC term does not train the discriminator here
    assert all(p.grad is not None for p in model.encoder.parameters())
    tc = next(updates)
    assert tc.name == "tc_discriminator" and [id(p) for p in tc.params] == [id(p) for p in disc_params]
    grads = torch.autograd.grad(tc.loss, list(model.encoder.parameters()) + list(model.decoder.parameters()),
                                allow_unused=True)
    assert all(g is None for g in grads)  # the discriminator's loss never reaches the autoencoder
    assert next(updates, None) is None
    # The TC term reaches the encoder: its gradient changes with the TC weight.
    x = torch.rand(16, 1, 28, 28)
    with_tc, without = _encoder_grads(40.0, x), _encoder_grads(0.0, x)
    assert max((a - b).abs().max().item() for a, b in zip(with_tc, without, strict=True)) > 1e-6


