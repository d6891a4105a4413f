"""The config rules of conditional models, each a one-line ConfigError."""

from __future__ import annotations

import pytest

from tests.builders import COND_DIM, COND_SIDE, conditional_config

DIM, SIDE = COND_DIM, COND_SIDE


@pytest.mark.parametrize(("sections", "message"), [
    ({"prior": {"kind": "adversarial"}, "objective": {"kind": "cvae", "beta": 1.0}},
     "prior.kind 'adversarial' cannot be conditional"),
    ({"objective": {"kind": "vae"}}, "needs objective.kind 'cvae'"),
    ({"net": {"arch": "conv4"}}, "needs net.arch 'unet'"),
    ({"data": {"condition": "none"}}, "objective.kind 'cvae' is the conditional VAE"),
    ({"objective": {"kl_anneal_start": 5, "kl_anneal_end": 2}}, "kl_anneal_start/end"),
    ({"data": {"condition": "edges"}}, "data.condition: 'edges' is not valid"),
])
def test_conditional_config_rules_are_one_line_config_errors(sections, message):
    from latentprior.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        conditional_config(**sections)
    # the Variational U-Net's N(mu(y), I) learns its mean, so prior-only epochs are allowed for it
    assert conditional_config(prior={"kind": "normal"}).train.prior_epochs > 0


