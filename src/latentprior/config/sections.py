"""The config sections: frozen dataclasses, one per concern, each holding the rules about its own fields.

Rules that tie two sections together (a flow needs latent_dim >= 2, prior-only epochs need a prior that learns,
...) live in :class:`Config` itself, so every way of building a config (YAML, ``--set``, sweeps, Python) checks
them. Reading and writing configs is :mod:`latentprior.config.io`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from latentprior.config.typed import ConfigError, apply_overrides
from latentprior.config.typed import at_least as _at_least
from latentprior.config.typed import check as _check

__all__ = [
    "ConfigError",
    "DataConfig",
    "NetConfig",
    "PriorConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "TrainConfig",
    "Config",
    "EvalConfig",
    "FLOW_PRIORS",
    "DENSITY_PRIORS",
    "LEARNABLE_PRIORS",
    "BINARY_LIKELIHOODS",
]


COLOUR_DATASETS = ("cifar10", "celeba")


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to train on and where its files live."""

    name: Literal["digits", "mnist", "fashion_mnist", "cifar10", "celeba"] = "mnist"
    dir: str | None = None  # None: the LATENTPRIOR_DATA_DIR environment variable
    verify: bool = True  # check files against the official checksums
    download: bool = False  # fetch missing files from the official URLs
    # image-to-image translation: the model sees y = c(x) and learns p(x | y) (latentprior.data.conditions):
    # downsample7, skeleton; inpainting top_half, window14; colourisation grayscale (colour datasets only)
    condition: Literal["none", "downsample7", "skeleton", "top_half", "window14", "grayscale"] = "none"

    def __post_init__(self) -> None:
        _check(self.condition != "grayscale" or self.name in COLOUR_DATASETS, f"data.condition 'grayscale' needs "
               f"colour images ({' or '.join(COLOUR_DATASETS)}), but data.name is '{self.name}'")


@dataclass(frozen=True)
class NetConfig:
    """Encoder/decoder family (latentprior.nets): its name, channel width, decoder output, spectral norm."""

    # infogan: the paper's FID network (ref. [5], as Dai & Wipf use it); conv4: the wider Ghosh et al. net;
    # resnet: Dai & Wipf's ResNet at depth 4 (appendix B). conv4 is the default so that older runs reload.
    # unet: the Variational U-Net pair of conditional models (data.condition), and only those
    arch: Literal["infogan", "conv4", "resnet", "unet"] = "conv4"
    width: float = 1.0  # channel multiplier of every layer of the arch; < 1 for CPU runs
    output: Literal["sigmoid", "linear"] = "sigmoid"  # decoder mean G(z) in [0, 1] or unbounded
    # spectral normalisation of every encoder layer; null: the arch's reference choice (on for infogan, as in
    # Dai & Wipf's code; off for conv4 and resnet)
    spectral_norm: bool | None = None
    # running-statistics momentum of every BatchNorm of the encoder and decoder: running = (1 - m) running + m batch.
    # 0.1 is PyTorch's; Dai & Wipf's code decays its moving averages by 0.999, i.e. 0.001 (the infogan paper configs)
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        _check(self.width > 0, f"net.width must be > 0, got {self.width}")
        _check(0 < self.bn_momentum <= 1, f"net.bn_momentum must be in (0, 1], got {self.bn_momentum}")


# Prior kinds by what they can do; the cross-field rules below use these, not the kind names.
FLOW_PRIORS = ("realnvp", "glow", "maf", "nsf")  # invertible z -> u: need latent_dim >= 2 (couplings split z)
DENSITY_PRIORS = ("normal", *FLOW_PRIORS, "gmm", "vamp")  # have log p(z): what a VAE's objectives need
LEARNABLE_PRIORS = (*FLOW_PRIORS, "gmm", "vamp", "adversarial")  # have parameters: prior-only epochs mean something
_MIXTURE_PRIORS = ("gmm", "vamp")  # read prior.components
DISCRIMINATOR_OBJECTIVES = ("aae", "factorvae")  # train a latent discriminator (prior.disc_*, objective.disc_*)


@dataclass(frozen=True)
class PriorConfig:
    """p(z): fixed standard normal, a flow (RealNVP of appendix A.1, Glow steps, zuko's MAF or NSF), a Gaussian
    mixture, the VampPrior, or the adversarial MLP (appendix A.2); see latentprior.priors."""

    # normal: N(0, I). realnvp: appendix A.1. glow: ActNorm + LU-decomposed invertible linear map + affine coupling.
    # maf / nsf: zuko's masked autoregressive flows, affine / rational-quadratic spline (each behind an ActNorm).
    # gmm: a learnable Gaussian mixture. vamp: the VampPrior, a mixture of the encoder's posteriors at learned
    # pseudo-inputs (its parameters are the pseudo-inputs alone). adversarial: appendix A.2's implicit prior.
    kind: Literal["normal", "realnvp", "glow", "maf", "nsf", "gmm", "vamp", "adversarial"] = "realnvp"
    # flow layers (realnvp couplings, glow steps, maf/nsf autoregressive layers), or adversarial MLP hidden layers
    layers: int = 24
    hidden: int = 1024  # width of each flow layer's network (coupling net, MADE) / of each prior MLP layer
    noise_dim: int | None = None  # adversarial prior input noise; None: the latent dimension
    # The latent discriminator: the adversarial prior's (A.2: 2 x 1024, ReLU) or FactorVAE's TC one (Kim & Mnih:
    # 6 x 1000, LeakyReLU(0.2); the FactorVAE configs set it). The defaults are A.2's, which FactorVAE runs used
    # before these fields existed, so their config.yaml files rebuild the network their checkpoints hold.
    disc_layers: int = 2  # hidden layers
    disc_hidden: int = 1024
    disc_activation: Literal["relu", "leaky_relu"] = "relu"  # leaky_relu: slope 0.2
    cond_embed: int = 64  # conditional models only: size of the condition's embedding, the context of p(z | y)
    components: int | None = None  # gmm: mixture components K; vamp: pseudo-inputs K. null: 10
    covariance: Literal["full", "diagonal"] | None = None  # gmm only: Cholesky-factored full or diagonal; null: full
    bins: int | None = None  # nsf only: rational-quadratic spline bins per dimension (on [-5, 5]); null: 8

    def __post_init__(self) -> None:
        _check(self.layers >= 1, f"prior.layers must be >= 1, got {self.layers}")
        _check(self.cond_embed >= 1, f"prior.cond_embed must be >= 1, got {self.cond_embed}")
        _check(self.hidden >= 1, f"prior.hidden must be >= 1, got {self.hidden}")
        _check(self.disc_layers >= 1, f"prior.disc_layers must be >= 1, got {self.disc_layers}")
        # Ignoring a value the chosen prior cannot use would hide a typo or a wrong prior.kind.
        for key, kinds in (("noise_dim", ("adversarial",)), ("components", _MIXTURE_PRIORS),
                           ("covariance", ("gmm",)), ("bins", ("nsf",))):
            _check(getattr(self, key) is None or self.kind in kinds, f"prior.{key} only applies to prior.kind "
                   f"{' or '.join(map(repr, kinds))}, but prior.kind is '{self.kind}'; remove prior.{key} (or set "
                   "it to null)")
        _check(self.noise_dim is None or self.noise_dim >= 1, f"prior.noise_dim must be >= 1 or null, got "
               f"{self.noise_dim}")
        _check(self.components is None or self.components >= 1, f"prior.components must be >= 1 or null, got "
               f"{self.components}")
        _check(self.bins is None or self.bins >= 2, f"prior.bins must be >= 2 or null, got {self.bins}")

    @property
    def is_flow(self) -> bool:
        """Whether p(z) is a normalising flow (an invertible map of the latent space onto its base)."""
        return self.kind in FLOW_PRIORS

    @property
    def has_density(self) -> bool:
        """Whether p(z) has a log-density (every kind but the adversarial one)."""
        return self.kind in DENSITY_PRIORS

    @property
    def is_learnable(self) -> bool:
        """Whether the prior has parameters to train (a fixed N(0, I) has none)."""
        return self.kind in LEARNABLE_PRIORS

    @property
    def n_components(self) -> int:
        """prior.components with its default (10)."""
        return 10 if self.components is None else self.components

    @property
    def covariance_type(self) -> Literal["full", "diagonal"]:
        """prior.covariance with its default ('full')."""
        return "full" if self.covariance is None else self.covariance

    @property
    def n_bins(self) -> int:
        """prior.bins with its default (8)."""
        return 8 if self.bins is None else self.bins


# Pixel likelihoods for binary data: the decoder's output is a probability and there is no scale to set.
BINARY_LIKELIHOODS = ("bernoulli", "continuous_bernoulli")


@dataclass(frozen=True)
class ModelConfig:
    """Encoder kind, latent size, and the reconstruction term log p(x|z): a pixel likelihood (Gaussian
    N(G(z), gamma I), Laplace or Bernoulli) and/or a VGG perceptual term (appendix B.1); see
    latentprior.models.likelihood and latentprior.models.reconstruction."""

    latent_dim: int = 64
    encoder: Literal["gaussian", "deterministic"] = "gaussian"
    # how a Gaussian encoder's second output h becomes q(z|x)'s variance. tanh_logvar: log sigma^2 =
    # 10 tanh(h / 10), a soft bound to [-10, 10]; softplus_std: sigma = 1e-6 + softplus(h), Dai & Wipf's code (the
    # infogan paper configs); unit: sigma = 1, the encoder gives the mean alone (the Variational U-Net's
    # q(z|x,y) = N(mu, I), whose KL to its N(mu(y), I) prior is 1/2 ||mu - mu(y)||^2)
    posterior: Literal["tanh_logvar", "softplus_std", "unit"] = "tanh_logvar"
    # the pixel likelihood p(x|z) (latentprior.models.likelihood). gaussian: N(G(z), gamma I). laplace: independent
    # Laplace(G(z), b) per pixel, an L1 loss, with b = gamma. bernoulli: G(z) are pixel probabilities, log p is the
    # binary cross-entropy (for grey pixels in [0, 1] not a normalised density). continuous_bernoulli: the
    # normalised density on [0, 1] of Loaiza-Ganem & Cunningham (2019). The last two need net.output 'sigmoid'.
    likelihood: Literal["gaussian", "laplace", "bernoulli", "continuous_bernoulli"] = "gaussian"
    # the likelihood's scale: the variance gamma of gaussian, the scale b of laplace; initial value when learned
    gamma: float = 1.0
    learn_gamma: bool = False  # Dai & Wipf: gamma (or laplace's b) is learned with the decoder
    # how a learned gamma learns. optimal: each training step uses the closed-form maximiser of F in gamma, the
    # batch's per-pixel MSE (laplace: mean absolute error) (a running average is kept for eval); gradient: log
    # gamma is a parameter of the autoencoder update at objective.lr (Dai & Wipf's code: ~50k steps at lr 1e-4)
    gamma_update: Literal["optimal", "gradient"] = "optimal"
    reconstruction: Literal["pixel", "perceptual", "pixel+perceptual"] = "pixel"
    perceptual_weight: float = 1.0  # lambda: log p(x|z) gets -lambda/2 * sum of squared VGG feature differences
    perceptual_net: Literal["vgg19", "vgg16"] = "vgg19"  # the paper's VGG19, or VGG16 as a substitute
    # a torchvision <perceptual_net>().features ImageNet state dict; null: <net>_features_imagenet.pth in the
    # folder named by the LATENTPRIOR_WEIGHTS_DIR environment variable
    perceptual_weights: str | None = None

    def __post_init__(self) -> None:
        _check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        _check(self.encoder == "gaussian" or self.posterior == "tanh_logvar", f"model.posterior "
               f"'{self.posterior}' parametrises a Gaussian encoder's variance, but model.encoder is "
               f"'{self.encoder}'; remove model.posterior")
        _check(self.gamma > 0, f"model.gamma must be > 0, got {self.gamma}")
        _check(self.perceptual_weight > 0, f"model.perceptual_weight must be > 0, got {self.perceptual_weight}")
        _check(not (self.learn_gamma and self.reconstruction == "perceptual"),
               "model.learn_gamma needs the pixel likelihood: set model.reconstruction to 'pixel+perceptual'")
        _check(self.likelihood not in BINARY_LIKELIHOODS or (self.gamma == 1.0 and not self.learn_gamma),
               f"model.gamma and model.learn_gamma set a likelihood's scale, and model.likelihood "
               f"'{self.likelihood}' has none: leave them at 1.0 and false")
        _check(self.likelihood == "gaussian" or self.reconstruction != "perceptual",
               f"model.likelihood '{self.likelihood}' is the pixel term, which model.reconstruction 'perceptual' "
               "leaves out: choose 'pixel' or 'pixel+perceptual'")
        _check(self.perceptual_weights is None or self.reconstruction != "pixel",
               "model.perceptual_weights is set but model.reconstruction is 'pixel'; choose 'perceptual' or "
               "'pixel+perceptual', or remove model.perceptual_weights")


@dataclass(frozen=True)
class ObjectiveConfig:
    """The bilevel objective (eqs. 5-7): which one, beta, and each update's optimizer."""

    # factorvae: Kim & Mnih's FactorVAE, a VAE with N(0, I) whose F also pays tc_weight x a total-correlation estimate
    # cvae: the conditional VAE of image-to-image translation (data.condition): F = log p(x|y,z) - beta w(t) KL
    kind: Literal["vae", "aae", "factorvae", "cvae"] = "vae"
    beta: float = 0.0  # regularization strength of q(z) in the encoder/decoder objective F
    tc_weight: float = 40.0  # factorvae only: gamma of the total-correlation term (the paper's FactorVAE: 40)
    adversarial_loss: Literal["paper", "nonsaturating"] = "paper"  # aae: eqs. 14-16 as written, or the
    # non-saturating variants (maximize log D for q in F, log(1 - D) for prior samples in f)
    lr: float = 1e-4  # Adam, encoder/decoder (and gamma)
    prior_lr: float | None = None  # None: same as lr
    disc_lr: float | None = None  # the latent discriminator's (aae) or TC discriminator's (factorvae); None: lr
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    # Adam's betas for the discriminator's update (aae, factorvae); None: adam_beta1/2. Kim & Mnih train
    # FactorVAE's discriminator with (0.5, 0.9) at lr 1e-4 (the FactorVAE configs set disc_lr and these).
    disc_adam_beta1: float | None = None
    disc_adam_beta2: float | None = None
    # aae: R1 penalty (Mescheder et al. 2018) on the discriminator's gradient at encoded codes, r1/2·E_q|∇D|².
    # 0 is the paper's game; > 0 keeps D smooth where q(z) lies, so the prior's gradient stays informative.
    r1_penalty: float = 0.0
    # cvae only: the KL weight w(t) rises linearly from 1e-6 at this joint step to 1 at kl_anneal_end (the
    # Variational U-Net uses T/2 and 3T/4 of T steps); kl_anneal_end 0: w = 1 throughout
    kl_anneal_start: int = 0
    kl_anneal_end: int = 0

    def __post_init__(self) -> None:
        _check(self.beta >= 0, f"objective.beta must be in [0, inf), got {self.beta}")
        _check(0 <= self.kl_anneal_start and (self.kl_anneal_end == 0 or self.kl_anneal_end > self.kl_anneal_start),
               f"objective.kl_anneal_start/end must satisfy 0 <= start < end (or end = 0: no annealing), got "
               f"{self.kl_anneal_start}, {self.kl_anneal_end}")
        _check(self.r1_penalty >= 0, f"objective.r1_penalty must be in [0, inf), got {self.r1_penalty}")
        _check(self.tc_weight >= 0, f"objective.tc_weight must be in [0, inf), got {self.tc_weight}")
        for k in ("lr", "prior_lr", "disc_lr"):
            v = getattr(self, k)
            _check(v is None or v > 0, f"objective.{k} must be > 0, got {v}")
        _check(0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1, "objective.adam_beta1/2 must be in [0, 1)")
        _check(all(b is None or 0 <= b < 1 for b in (self.disc_adam_beta1, self.disc_adam_beta2)),
               f"objective.disc_adam_beta1/2 must be in [0, 1) or null, got {self.disc_adam_beta1}, "
               f"{self.disc_adam_beta2}")
        if self.kind not in DISCRIMINATOR_OBJECTIVES:
            # Ignoring a setting for a network the objective does not have would hide a typo or a wrong kind.
            _check(self.disc_adam_beta1 is None and self.disc_adam_beta2 is None,
                   f"objective.disc_adam_beta1/2 only apply to objective.kind 'aae' or 'factorvae' (a "
                   f"discriminator's update), but objective.kind is '{self.kind}'; remove them")

    @property
    def disc_betas(self) -> tuple[float, float]:
        """Adam's (beta1, beta2) for the discriminator's update: disc_adam_beta1/2, else adam_beta1/2."""
        b1, b2 = self.disc_adam_beta1, self.disc_adam_beta2
        return (self.adam_beta1 if b1 is None else b1, self.adam_beta2 if b2 is None else b2)


@dataclass(frozen=True)
class TrainConfig:
    """The loop: budget, batching, logging, checkpointing.

    Fields with ``metadata={"resume_may_change": True}`` (the budget and bookkeeping) may differ when a run is
    resumed; any other change is refused (rundir/checkpoints.py, ``check_resumable``).
    """

    # joint training of encoder, decoder and prior
    epochs: float = field(default=200, metadata={"resume_may_change": True})
    # then the prior alone on the frozen encoder (paper: 50-100)
    prior_epochs: float = field(default=0, metadata={"resume_may_change": True})
    batch_size: int = 100
    lr_halve_every: float | None = None  # epochs; CIFAR-10 in the paper halves every 250
    seed: int = 0
    # steps between metric logs (the only host syncs of the loop)
    log_every: int = field(default=50, metadata={"resume_may_change": True})
    # steps between checkpoints (one is always written at the end)
    checkpoint_every: int = field(default=1000, metadata={"resume_may_change": True})
    samples_every: int = field(default=0, metadata={"resume_may_change": True})  # steps between sample grids (0: end)
    # steps between TensorBoard previews (samples, reconstructions, interpolation); 0: at every checkpoint
    images_every: int = field(default=0, metadata={"resume_may_change": True})
    device: str = field(default="auto", metadata={"resume_may_change": True})  # auto | cpu | cuda | cuda:N
    threads: int | None = field(default=None, metadata={"resume_may_change": True})  # torch CPU threads; None: torch's
    progress: bool = field(default=True, metadata={"resume_may_change": True})  # tqdm progress bar
    # Speed options (training/performance.py). None of them changes the algorithm; amp changes the arithmetic
    # (tests/test_performance.py bounds the first steps' losses against fp32), so only amp is fixed for a run.
    amp: Literal["off", "bf16", "fp16"] = "off"  # autocast the updates' forward passes; fp16 adds a GradScaler
    # torch.compile encoder, decoder, prior and discriminator (state_dict keys unchanged)
    compile: bool = field(default=False, metadata={"resume_may_change": True})
    # NHWC memory format for the conv nets and their batches
    channels_last: bool = field(default=False, metadata={"resume_may_change": True})
    # Adam's implementation: auto = fused on CUDA, the per-parameter loop on the CPU (bit-identical to earlier runs;
    # fused on the CPU sums in another order, 6e-3 relative apart after 200 steps, and was not faster on 1 thread)
    adam_impl: Literal["auto", "loop", "foreach", "fused"] = field(default="auto", metadata={"resume_may_change": True})
    # Capture each step (every update: forward, backward, optimizer) as a CUDA graph and replay it; auto = on for
    # one CUDA process without fp16 (GradScaler syncs with the host), off elsewhere (training/cuda_graphs.py)
    cuda_graphs: Literal["auto", "on", "off"] = field(default="auto", metadata={"resume_may_change": True})
    sync_bn: bool = False  # multi-process (torchrun) only: BatchNorm statistics over the global batch instead of
    # each process's shard; a single process is unaffected

    def __post_init__(self) -> None:
        _at_least(self, "train", epochs=0, prior_epochs=0, batch_size=1, log_every=1, checkpoint_every=1,
                  samples_every=0, images_every=0)
        _check(self.threads is None or self.threads >= 1, f"train.threads must be >= 1 or null, got {self.threads}")
        _check(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device) is not None,
               f"train.device: {self.device!r} is not valid; choose auto, cpu, mps, cuda or cuda:N")


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
            _check(self.prior.has_density, f"objective.kind 'vae' needs a prior with a density "
                   f"({', '.join(map(repr, DENSITY_PRIORS))}), got '{self.prior.kind}'")
            _check(self.model.encoder == "gaussian", "objective.kind 'vae' needs model.encoder 'gaussian'")
        if self.objective.kind == "factorvae":
            _check(self.prior.kind == "normal", f"objective.kind 'factorvae' is a VAE with a fixed N(0, I) prior: "
                   f"set prior.kind 'normal', got '{self.prior.kind}'")
            _check(self.model.encoder == "gaussian", "objective.kind 'factorvae' needs model.encoder 'gaussian'")
        if self.prior.disc_activation != "relu":
            _check(self.objective.kind in DISCRIMINATOR_OBJECTIVES, f"prior.disc_activation only applies to "
                   f"objective.kind 'aae' or 'factorvae' (a latent discriminator), but objective.kind is "
                   f"'{self.objective.kind}'; remove prior.disc_activation")
        if self.prior.is_flow:
            _check(self.model.latent_dim >= 2, f"prior.kind '{self.prior.kind}' is a flow and needs "
                   f"model.latent_dim >= 2 (each layer conditions part of z on the rest), got {self.model.latent_dim}")
        if self.prior.kind == "vamp":  # a mixture of the encoder's Gaussian posteriors q(z | u_k)
            _check(self.model.encoder == "gaussian", "prior.kind 'vamp' needs model.encoder 'gaussian'")
        if self.model.likelihood in BINARY_LIKELIHOODS:
            _check(self.net.output == "sigmoid", f"model.likelihood '{self.model.likelihood}' reads the decoder's "
                   f"output as probabilities in [0, 1]: set net.output 'sigmoid', got '{self.net.output}'")
        self._check_conditional()
        if self.train.prior_epochs > 0:
            # a conditional normal prior N(mu(y), I) learns its mean: it has something to train
            learnable = self.prior.is_learnable or self.data.condition != "none"
            _check(learnable, f"train.prior_epochs = {self.train.prior_epochs:g} trains the prior "
                   f"alone, but prior.kind '{self.prior.kind}' is a fixed N(0, I) with nothing to train; set "
                   f"train.prior_epochs: 0 or choose prior.kind {' or '.join(map(repr, LEARNABLE_PRIORS))}")

    def _check_conditional(self) -> None:
        """A condition, the U-Net pair and the cvae objective go together, with a density prior p(z | y)."""
        cond = self.data.condition
        if cond == "none":
            _check(self.objective.kind != "cvae", "objective.kind 'cvae' is the conditional VAE: set data.condition "
                   "(e.g. to 'downsample7')")
            _check(self.net.arch != "unet", "net.arch 'unet' reads a condition: set data.condition (e.g. to "
                   "'downsample7'), or choose another net.arch")
            return
        _check(self.prior.kind in ("realnvp", "normal"), f"prior.kind '{self.prior.kind}' cannot be conditional "
               f"(data.condition '{cond}'): choose prior.kind 'realnvp' (a flow p(z|y)) or 'normal' (N(mu(y), I))")
        _check(self.objective.kind == "cvae", f"data.condition '{cond}' needs objective.kind 'cvae', got "
               f"'{self.objective.kind}'")
        _check(self.net.arch == "unet", f"data.condition '{cond}' needs net.arch 'unet' (nets that read the "
               f"condition), got '{self.net.arch}'")
        _check(self.model.encoder == "gaussian", "objective.kind 'cvae' needs model.encoder 'gaussian'")

    def replace(self, **overrides: Any) -> Config:
        """A copy with dotted-key overrides applied, e.g. ``cfg.replace(**{"objective.beta": 1.0})``."""
        return apply_overrides(self, overrides)


@dataclass(frozen=True)
class EvalConfig:
    """How a finished run is evaluated: the one source of eval defaults for ``latentprior eval``,
    :func:`~latentprior.evaluation.evaluate_run` and a sweep file's ``eval:`` block.

    Not part of :class:`Config`: evaluation never changes a run, so a run's config does not hold it.
    Metric names are checked against the metric registry by the evaluation package, which owns that list.
    """

    metrics: tuple[str, ...] = ("fid", "pr", "kid")
    n: int = 10000  # generated samples
    # test images on the reference side; 0: min(n, |test|). Set it to score n samples against the whole test
    # set (e.g. 5,000 samples against MNIST's 10,000 test images); capped at |test|.
    n_ref: int = 0
    batch_size: int = 100
    nll_k: int = 100  # importance samples per test image for the IW-NLL
    seed: int = 0  # the generated set depends on (seed, n) only
    lpips_net: Literal["alex", "vgg"] = "alex"  # trunk of the LPIPS sample-diversity metric
    lpips_pairs: int = 1000  # generated pairs it averages over
    attributes: str = "default"  # attribute set of the separability classifier (evaluation.attributes)
    separability_n: int = 5000  # generated samples; the most confident half per attribute is kept
    # paths of the perceptual path length (StyleGAN uses 100,000); with ppl_max_n, per block. 1000 paths give a
    # standard error of 2.0-3.1 % of the value on the MNIST study's models (VAE, beta-VAE, flow zT and z0)
    ppl_n: int = 1000
    ppl_epsilon: float = 1e-4  # step along the path; distances are scaled by 1/epsilon^2
    # adaptive sample size: with ppl_max_n > ppl_n, blocks of ppl_n paths are drawn until the standard error of
    # the PPL is below ppl_rel_se x its value or ppl_max_n paths are drawn; else (0) exactly ppl_n paths.
    # Every record states the paths drawn, the standard error and whether it is below ppl_rel_se x the value.
    ppl_max_n: int = 0
    ppl_rel_se: float = 0.05
    # face: StyleGAN's crop of aligned faces before LPIPS, rows [3c, 7c) and columns [2c, 6c) of an H x W image,
    # c = H // 8 (the 32 x 32 face of a 64 x 64 CelebA image); none: the whole image
    ppl_crop: Literal["none", "face"] = "none"

    def __post_init__(self) -> None:
        _check(len(self.metrics) >= 1, "eval.metrics must name at least one metric")
        _check(self.n >= 2, f"eval.n must be >= 2 (a covariance needs two samples), got {self.n}")
        _at_least(self, "eval", n_ref=0, batch_size=1, nll_k=1, lpips_pairs=1, separability_n=4, ppl_n=1)
        _check(self.ppl_epsilon > 0, f"eval.ppl_epsilon must be > 0, got {self.ppl_epsilon}")
        _check(self.ppl_max_n >= 0, f"eval.ppl_max_n must be >= 0 (0: exactly ppl_n paths), got {self.ppl_max_n}")
        _check(0 < self.ppl_rel_se < 1, f"eval.ppl_rel_se must be in (0, 1), got {self.ppl_rel_se}")
