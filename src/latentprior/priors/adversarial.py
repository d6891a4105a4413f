"""Adversarial (implicit) prior and its discriminator, as the paper's appendix A.2.

The prior is a generator: ε ~ N(0, I) -> [FC-hidden -> BN -> ReLU] x n_layers -> FC-dim. It can be sampled
but has no density, so an objective trains it against a :class:`Discriminator` on encoder codes
(``has_density = False``; ``log_prob`` raises :class:`~latentprior.priors.base.ImplicitPriorError`).

The paper gives no initialisation for these networks; PyTorch's defaults are used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentprior.priors.base import ImplicitPriorError, Prior, check_temperature

__all__ = ["ACTIVATIONS", "MLPPrior", "Discriminator"]


class MLPPrior(Prior):
    """Implicit prior z = G(ε), ε ~ N(0, I_noise_dim), z: (n, dim).

    Batch norm makes a draw depend on the rest of its batch in train mode (and needs n >= 2 there);
    in eval mode the running statistics are used and draws are independent.
    """

    has_density = False

    def __init__(self, dim: int, hidden: int, n_layers: int, noise_dim: int | None = None) -> None:
        super().__init__(dim)
        if hidden < 1 or n_layers < 0:
            raise ValueError(f"need hidden >= 1 and n_layers >= 0, got {hidden}, {n_layers}")
        self.noise_dim = dim if noise_dim is None else noise_dim
        if self.noise_dim < 1:
            raise ValueError(f"noise_dim must be >= 1, got {self.noise_dim}")
        self.hidden, self.n_layers = hidden, n_layers
        layers: list[nn.Module] = []
        width = self.noise_dim
        for _ in range(n_layers):
            # No bias before BN: batch norm subtracts the mean, so a bias there would get no gradient.
            layers += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def log_prob(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        raise ImplicitPriorError(
            "MLPPrior is an implicit (adversarial) prior: it can be sampled but has no log_prob; "
            "train it against a Discriminator, or use a flow prior where a density is needed"
        )

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """(n, dim) draws G(τ ε), differentiable with respect to the generator's parameters.

        Temperature τ scales the generator's input noise, as a GAN's truncation trick narrows its input: the
        draws move toward G's image of the noise's centre. The prior has no density, so this is not a tempered
        p(z), and how far the spread of z shrinks depends on G (a ReLU net need not shrink it by τ).
        """
        if c is not None:
            raise ValueError("MLPPrior is unconditional but a context c was given")
        tau = check_temperature(temperature)
        return self.net(tau * self.base_noise(n, self.noise_dim, generator))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, noise_dim={self.noise_dim}, hidden={self.hidden}, n_layers={self.n_layers}"


# The hidden layers' nonlinearity: the paper's latent discriminator (A.2) uses ReLU; Kim & Mnih's FactorVAE
# discriminator LeakyReLU with slope 0.2.
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


class Discriminator(nn.Module):
    """D(z) = [FC-hidden -> activation] x n_layers -> FC-1.  z: (B, dim) -> logits (B,).

    Returns logits, not probabilities: losses use ``F.logsigmoid`` / BCE-with-logits for stability. One logit is
    the two-logit softmax of Kim & Mnih's discriminator up to its parametrisation (the logit difference).
    ``activation``: a key of :data:`ACTIVATIONS`; it holds no parameters, so the state-dict keys do not depend on it.
    """

    def __init__(self, dim: int, hidden: int, n_layers: int, activation: str = "relu") -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or n_layers < 0:
            raise ValueError(f"need dim >= 1, hidden >= 1, n_layers >= 0; got {dim}, {hidden}, {n_layers}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        self.dim, self.hidden, self.n_layers, self.activation = dim, hidden, n_layers, activation
        layers: list[nn.Module] = []
        width = dim
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """z: (B, dim) -> logits (B,)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected z of shape (B, {self.dim}), got {tuple(z.shape)}")
        return self.net(z).squeeze(-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, n_layers={self.n_layers}, activation={self.activation}"
