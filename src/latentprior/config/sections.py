"""The config sections: frozen dataclasses, one per concern, each holding the rules about its own fields.

Rules that tie two sections together (a flow needs latent_dim >= 2, prior-only epochs need a prior that learns,
...) live in :class:`Config` itself, so every way of building a config (YAML, ``--set``, sweeps, Python) checks
them. Reading and writing configs is :mod:`latentprior.config.io`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
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
    "ExPostPriorConfig",
    "EXPOST_PRIORS",
    "FLOW_PRIORS",
    "DENSITY_PRIORS",
    "LEARNABLE_PRIORS",
    "BINARY_LIKELIHOODS",
    "IMAGE_RESOLUTIONS",
    "is_import_path",
    "is_object_marker",
]


def _key(default: Any, help: str, **metadata: Any) -> Any:
    """A config field with its one-line description: the one source of ``latentprior config keys``, docs/config.md
    and the ``latentprior eval`` options. ``metadata`` adds flags such as ``resume_may_change=True``."""
    return field(default=default, metadata={"help": help, **metadata})


def _section(cls: type, help: str) -> Any:
    """A nested section of :class:`Config`, with its description."""
    return field(default_factory=cls, metadata={"help": help})


COLOUR_DATASETS = ("cifar10", "celeba")
IMAGE_RESOLUTIONS = (28, 32, 64)  # the sizes the built-in nets are made for (latentprior.nets)
_IMAGES_ONLY = ("path", "resolution", "channels", "test_fraction")  # data keys that only data.name 'images' reads

# A factory is named by an import path "package.module:attribute" (never a file path): only code already
# installed where the run is loaded can be named, and models/factories.py imports it only from allowed modules.
_IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# A module passed as a Python object (latentprior.Trainer.fit) is recorded as "<module.Class object>": a record of
# what it was, which no loader imports.
_OBJECT_MARKER = re.compile(r"<[A-Za-z_][\w.<>]* object>")


def is_import_path(value: str) -> bool:
    """Whether ``value`` is ``package.module:attribute`` (dotted names on both sides; no file path)."""
    return _IMPORT_PATH.fullmatch(value) is not None


def is_object_marker(value: str) -> bool:
    """Whether ``value`` records a module passed from Python, ``<package.module.Class object>``."""
    return _OBJECT_MARKER.fullmatch(value) is not None


def _check_factory(value: str | None, key: str) -> None:
    _check(value is None or is_import_path(value) or is_object_marker(value), f"{key}: {value!r} is not an import "
           "path; expected 'package.module:attribute' (a function or class importable where the run is loaded; "
           "file paths are not accepted)")


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to train on and where its files live."""

    # images: a folder of your own PNG/JPEG files (data.path; latentprior.data.images). custom: images passed from
    # Python (latentprior.Trainer.fit), which a loader cannot find again: evaluation needs a reference given to it
    name: Literal["digits", "mnist", "fashion_mnist", "cifar10", "celeba", "images", "custom"] = _key(
        "mnist", "dataset to train on: digits (ships inside scikit-learn: no files, no download), mnist, "
        "fashion_mnist, cifar10, celeba, images (a folder of your own PNG/JPEG files, data.path) or custom (images "
        "passed from Python)")
    dir: str | None = _key(None, "folder of the dataset files; null: the LATENTPRIOR_DATA_DIR environment variable")
    verify: bool = _key(True, "check the data files against the official checksums")
    download: bool = _key(False, "fetch missing data files from the official URLs")
    condition: Literal["none", "downsample7", "skeleton", "top_half", "window14", "grayscale"] = _key(
        "none", "image-to-image translation: the model sees y = c(x) and learns p(x | y) (latentprior.data."
        "conditions): downsample7, skeleton; inpainting top_half, window14; colourisation grayscale (colour "
        "datasets only)")
    # where the folder is may change on resume (as data.dir); its content is what the split and caches are keyed on
    path: str | None = _key(None, "data.name 'images' only: the folder of PNG/JPEG files, searched recursively "
                                  "(hidden files skipped)", resume_may_change=True)
    resolution: int | None = _key(None, "data.name 'images' only: the side every image is centre-cropped and resized "
                                        "to, 28, 32 or 64 (the built-in nets' sizes); null: 32")
    channels: int | None = _key(None, "data.name 'images' only: 1 (grayscale) or 3 (RGB); every file is converted; "
                                      "null: 3")
    test_fraction: float | None = _key(None, "data.name 'images' only: the share of images held out as the test "
                                             "split (FID references), chosen by content hash; null: 0.1")

    def __post_init__(self) -> None:
        colour = self.name in COLOUR_DATASETS or (self.name == "images" and self.image_channels == 3)
        _check(self.condition != "grayscale" or colour, f"data.condition 'grayscale' needs colour images "
               f"({' or '.join(COLOUR_DATASETS)}, or 'images' with data.channels 3), but data.name is '{self.name}'")
        for key in _IMAGES_ONLY:  # ignoring a folder setting would hide a typo in data.name
            _check(getattr(self, key) is None or self.name == "images", f"data.{key} only applies to data.name "
                   f"'images' (a folder of your own images), but data.name is '{self.name}'; remove data.{key}")
        if self.name != "images":
            return
        _check(bool(self.path), "data.name 'images' needs data.path, the folder of PNG/JPEG files")
        _check(self.image_resolution in IMAGE_RESOLUTIONS, f"data.resolution must be one of "
               f"{list(IMAGE_RESOLUTIONS)} (the built-in nets' sizes), got {self.resolution}")
        _check(self.image_channels in (1, 3), f"data.channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        _check(0 < self.image_test_fraction < 1, f"data.test_fraction must be in (0, 1), got {self.test_fraction}")

    @property
    def image_resolution(self) -> int:
        """data.resolution with its default (32)."""
        return 32 if self.resolution is None else self.resolution

    @property
    def image_channels(self) -> int:
        """data.channels with its default (3)."""
        return 3 if self.channels is None else self.channels

    @property
    def image_test_fraction(self) -> float:
        """data.test_fraction with its default (0.1)."""
        return 0.1 if self.test_fraction is None else self.test_fraction


@dataclass(frozen=True)
class NetConfig:
    """Encoder/decoder family (latentprior.nets): its name, channel width, decoder output, spectral norm."""

    # conv4 is the default so that older runs reload.
    arch: Literal["infogan", "conv4", "resnet", "unet"] = _key(
        "conv4", "encoder/decoder: infogan (the paper's FID net, as Dai & Wipf use it; the fastest on a CPU), "
        "conv4 (the wider Ghosh et al. net), resnet (Dai & Wipf's, depth 4, appendix B), unet (conditional models "
        "only)")
    width: float = _key(1.0, "channel multiplier of every layer of the arch; < 1 for CPU runs")
    output: Literal["sigmoid", "linear"] = _key("sigmoid", "decoder mean G(z): in [0, 1] (sigmoid) or unbounded")
    spectral_norm: bool | None = _key(
        None, "spectral normalisation of every encoder layer; null: the arch's reference choice (on for infogan, "
        "off for conv4 and resnet)")
    # 0.1 is PyTorch's; Dai & Wipf's code decays its moving averages by 0.999, i.e. 0.001 (the infogan paper configs)
    bn_momentum: float = _key(0.1, "running-statistics momentum m of every BatchNorm of the encoder and decoder: "
                                   "running = (1 - m) running + m batch (Dai & Wipf's code: 0.001)")
    # Your own networks (latentprior.models.factories), in place of net.arch's: a function or class called with the
    # shapes and the *_args. The encoder maps x (B, C, H, W) to (B, 2D) (mean, raw variance) or (B, D); the decoder
    # z (B, D) to G(z) (B, C, H, W).
    encoder: str | None = field(default=None, metadata={"help": (
        "your encoder, 'package.module:attribute', called as f(image_shape=(C, H, W), out_dim=2D or D, "
        "**net.encoder_args); null: net.arch's")})
    encoder_args: dict[str, Any] = field(default_factory=dict, metadata={"help": (
        "keyword arguments of net.encoder (plain data)")})
    decoder: str | None = field(default=None, metadata={"help": (
        "your decoder, 'package.module:attribute', called as f(latent_dim=D, image_shape=(C, H, W), "
        "**net.decoder_args); null: net.arch's")})
    decoder_args: dict[str, Any] = field(default_factory=dict, metadata={"help": (
        "keyword arguments of net.decoder (plain data)")})

    def __post_init__(self) -> None:
        _check(self.width > 0, f"net.width must be > 0, got {self.width}")
        _check(0 < self.bn_momentum <= 1, f"net.bn_momentum must be in (0, 1], got {self.bn_momentum}")
        for key in ("encoder", "decoder"):
            _check_factory(getattr(self, key), f"net.{key}")
            _check(not getattr(self, f"{key}_args") or getattr(self, key) is not None, f"net.{key}_args only "
                   f"applies with net.{key} (your own {key}); remove it or set net.{key}")


# Prior kinds by what they can do; the cross-field rules below use these, not the kind names.
FLOW_PRIORS = ("realnvp", "glow", "maf", "nsf")  # invertible z -> u: need latent_dim >= 2 (couplings split z)
# (custom, your own prior, is in none of these: what it can do is checked on the object, models/factories.py)
DENSITY_PRIORS = ("normal", *FLOW_PRIORS, "gmm", "vamp")  # have log p(z): what a VAE's objectives need
LEARNABLE_PRIORS = (*FLOW_PRIORS, "gmm", "vamp", "adversarial")  # have parameters: prior-only epochs mean something
_MIXTURE_PRIORS = ("gmm", "vamp")  # read prior.components
DISCRIMINATOR_OBJECTIVES = ("aae", "factorvae")  # train a latent discriminator (prior.disc_*, objective.disc_*)


@dataclass(frozen=True)
class PriorConfig:
    """p(z): fixed standard normal, a flow (RealNVP of appendix A.1, Glow steps, zuko's MAF or NSF), a Gaussian
    mixture, the VampPrior, or the adversarial MLP (appendix A.2); see latentprior.priors."""

    # custom: your own Prior (prior.factory), following latentprior.priors.base's contract
    kind: Literal["normal", "realnvp", "glow", "maf", "nsf", "gmm", "vamp", "adversarial", "custom"] = _key(
        "realnvp", "p(z): normal N(0, I); realnvp (appendix A.1); glow (ActNorm, LU-decomposed linear map, affine "
        "coupling); maf/nsf (zuko's autoregressive affine/spline flows); gmm (a learnable Gaussian mixture); vamp "
        "(VampPrior: the encoder's posteriors at learned pseudo-inputs); adversarial (appendix A.2, implicit); "
        "custom (your own Prior, prior.factory)")
    layers: int = _key(24, "flow layers (realnvp couplings, glow steps, maf/nsf layers), or the adversarial prior "
                           "MLP's hidden layers")
    hidden: int = _key(1024, "width of each flow layer's network (coupling net, MADE) or prior MLP layer")
    noise_dim: int | None = _key(None, "adversarial only: the prior's input noise size; null: the latent dimension")
    # The latent discriminator: the adversarial prior's (A.2: 2 x 1024, ReLU) or FactorVAE's TC one (Kim & Mnih:
    # 6 x 1000, LeakyReLU(0.2); the FactorVAE configs set it). The defaults are A.2's, which FactorVAE runs used
    # before these fields existed, so their config.yaml files rebuild the network their checkpoints hold.
    disc_layers: int = _key(2, "hidden layers of the latent discriminator (the adversarial prior's, FactorVAE's "
                               "total-correlation one)")
    disc_hidden: int = _key(1024, "width of each latent discriminator layer")
    disc_activation: Literal["relu", "leaky_relu"] = _key(
        "relu", "the latent discriminator's activation: relu, or leaky_relu with slope 0.2 (Kim & Mnih)")
    cond_embed: int = _key(64, "conditional models only: size of the condition's embedding, the context of p(z | y)")
    components: int | None = _key(None, "gmm: mixture components K; vamp: pseudo-inputs K; null: 10")
    covariance: Literal["full", "diagonal"] | None = _key(
        None, "gmm only: Cholesky-factored full or diagonal covariances; null: full")
    bins: int | None = _key(None, "nsf only: rational-quadratic spline bins per dimension (on [-5, 5]); null: 8")
    factory: str | None = field(default=None, metadata={"help": (
        "prior.kind 'custom' only: your Prior, 'package.module:attribute', called as f(dim=D, "
        "**prior.factory_args)")})
    factory_args: dict[str, Any] = field(default_factory=dict, metadata={"help": (
        "keyword arguments of prior.factory (plain data)")})
    # own: the prior's initial weights come from a generator of their own, seeded by one draw of the run's stream,
    # so the run's later draws (posterior noise, ...) are the same whichever prior is built, and at beta = 0 the
    # autoencoder trains bit for bit alike under every prior. shared (the default, and every older run's): drawn
    # from the run's stream
    init_rng: Literal["shared", "own"] = _key(
        "shared", "own: the prior's initial weights from a generator of their own (seeded by one draw of the run's "
        "stream), so the rest of the run's random numbers do not depend on the prior: at beta = 0 the autoencoder "
        "then trains identically under every prior; shared: from the run's stream")

    def __post_init__(self) -> None:
        _check(self.layers >= 1, f"prior.layers must be >= 1, got {self.layers}")
        _check_factory(self.factory, "prior.factory")
        _check((self.factory is not None) == (self.kind == "custom"), "prior.kind 'custom' goes with prior.factory "
               f"(your own prior, 'package.module:attribute'), got prior.kind '{self.kind}' and prior.factory "
               f"{self.factory!r}")
        _check(not self.factory_args or self.factory is not None, "prior.factory_args only applies with "
               "prior.factory; remove it or set prior.factory")
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
        """Whether p(z) has a log-density (every kind but the adversarial one; a custom prior's ``has_density`` is
        checked on the object when the model is built)."""
        return self.kind in DENSITY_PRIORS or self.kind == "custom"

    @property
    def is_learnable(self) -> bool:
        """Whether the prior has parameters to train (a fixed N(0, I) has none; a custom prior's are counted on
        the object when the model is built)."""
        return self.kind in LEARNABLE_PRIORS or self.kind == "custom"

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

    latent_dim: int = _key(64, "dimension of the latent code z")
    encoder: Literal["gaussian", "deterministic"] = _key(
        "gaussian", "q(z|x): a Gaussian (mean and log-variance) or a deterministic code")
    posterior: Literal["tanh_logvar", "softplus_std", "unit"] = _key(
        "tanh_logvar", "how a Gaussian encoder's second output h becomes q(z|x)'s variance: tanh_logvar (log "
        "sigma^2 = 10 tanh(h / 10), a soft bound to [-10, 10]), softplus_std (sigma = 1e-6 + softplus(h), Dai & "
        "Wipf's code; the infogan paper configs) or unit (sigma = 1, the encoder gives the mean alone: the "
        "Variational U-Net's q(z|x,y) = N(mu, I), whose KL to its N(mu(y), I) prior is 1/2 ||mu - mu(y)||^2)")
    likelihood: Literal["gaussian", "laplace", "bernoulli", "continuous_bernoulli"] = _key(
        "gaussian", "pixel likelihood p(x|z): gaussian N(G(z), gamma I); laplace (an L1 loss, scale b = gamma); "
        "bernoulli (G(z) are pixel probabilities; grey pixels make it unnormalised); continuous_bernoulli "
        "(Loaiza-Ganem & Cunningham's normalised density on [0, 1]); the last two need net.output sigmoid")
    gamma: float = _key(1.0, "the likelihood's scale: gaussian's variance gamma, laplace's b; the initial value "
                             "when learned")
    learn_gamma: bool = _key(False, "learn gamma (or laplace's b) with the decoder (Dai & Wipf)")
    gamma_update: Literal["optimal", "gradient"] = _key(
        "optimal", "how a learned gamma learns: optimal (each step uses the batch's closed-form maximiser, its "
        "per-pixel MSE or mean absolute error; a running average for eval) or gradient (log gamma trained at "
        "objective.lr, as Dai & Wipf's code)")
    reconstruction: Literal["pixel", "perceptual", "pixel+perceptual"] = _key(
        "pixel", "the reconstruction term: the pixel likelihood, a VGG perceptual term (appendix B.1), or both")
    perceptual_weight: float = _key(1.0, "lambda: log p(x|z) gets -lambda/2 x the summed squared VGG feature "
                                         "differences")
    perceptual_net: Literal["vgg19", "vgg16"] = _key("vgg19", "VGG of the perceptual term (the paper's VGG19, or "
                                                              "VGG16 as a substitute)")
    perceptual_weights: str | None = _key(
        None, "a torchvision <perceptual_net>().features ImageNet state dict; null: "
        "<net>_features_imagenet.pth in --weights-dir or LATENTPRIOR_WEIGHTS_DIR")

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

    kind: Literal["vae", "aae", "factorvae", "cvae"] = _key(
        "vae", "the bilevel objective: vae, aae (adversarial prior), factorvae (Kim & Mnih: a VAE with N(0, I) "
        "whose F also pays tc_weight x a total-correlation estimate), cvae (conditional VAE of image-to-image "
        "translation: F = log p(x|y,z) - beta w(t) KL)")
    beta: float = _key(0.0, "regularisation strength of q(z) in the encoder/decoder objective F")
    tc_weight: float = _key(40.0, "factorvae only: weight of the total-correlation term (the paper's FactorVAE: 40)")
    adversarial_loss: Literal["paper", "nonsaturating"] = _key(
        "paper", "aae: eqs. 14-16 as written, or the non-saturating variants (maximise log D for q in F, "
        "log(1 - D) for prior samples in f)")
    # Adam's learning rates may change when a run is resumed (`latentprior resume RUN --set objective.lr=...`, e.g.
    # lower after a NaN stop): the checkpoint's moments stay valid, and the change is recorded in the run's
    # config_history.jsonl
    lr: float = _key(1e-4, "Adam learning rate of the encoder and decoder (and gamma)", resume_may_change=True)
    prior_lr: float | None = _key(None, "Adam learning rate of the prior; null: lr", resume_may_change=True)
    disc_lr: float | None = _key(None, "Adam learning rate of the latent discriminator (aae) or the TC "
                                       "discriminator (factorvae); null: lr", resume_may_change=True)
    adam_beta1: float = _key(0.9, "Adam's beta1 of every update but the discriminator's")
    adam_beta2: float = _key(0.999, "Adam's beta2 of every update but the discriminator's")
    # Kim & Mnih train FactorVAE's discriminator with (0.5, 0.9) at lr 1e-4 (the FactorVAE configs set these).
    disc_adam_beta1: float | None = _key(None, "Adam's beta1 of the discriminator's update (aae, factorvae); null: "
                                               "adam_beta1")
    disc_adam_beta2: float | None = _key(None, "Adam's beta2 of the discriminator's update (aae, factorvae); null: "
                                               "adam_beta2")
    r1_penalty: float = _key(
        0.0, "aae: R1 penalty r1/2 E_q|grad D|^2 on the discriminator at encoded codes (Mescheder et al. 2018); 0 "
        "is the paper's game, > 0 keeps D smooth where q(z) lies")
    kl_anneal_start: int = _key(0, "cvae only: joint step at which the KL weight w(t) starts rising linearly "
                                   "from 1e-6")
    kl_anneal_end: int = _key(0, "cvae only: joint step at which w(t) reaches 1 (the Variational U-Net: 3T/4 of T "
                                 "steps); 0: w = 1 throughout")

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

    epochs: float = _key(200, "joint training of encoder, decoder and prior", resume_may_change=True)
    prior_epochs: float = _key(0, "then the prior alone on the frozen encoder (paper: 50-100)",
                               resume_may_change=True)
    batch_size: int = _key(100, "images per step (the global batch under torchrun)")
    lr_halve_every: float | None = _key(None, "halve every learning rate every this many epochs (CIFAR-10 in the "
                                              "paper: 250); null: constant")
    seed: int = _key(0, "seed of the initialisation, the batch order and every noise draw")
    log_every: int = _key(50, "steps between metric logs (the loop's only host syncs)", resume_may_change=True)
    checkpoint_every: int = _key(1000, "steps between checkpoint saves (one is always saved at the end)",
                                 resume_may_change=True)
    samples_every: int = _key(0, "steps between sample grids in samples/step_N.png; 0: only the end's previews",
                              resume_may_change=True)
    images_every: int = _key(0, "steps between logged image previews (samples, reconstructions, interpolation); "
                                "0: at every checkpoint", resume_may_change=True)
    device: str = _key("auto", "auto, cpu, mps, cuda or cuda:N", resume_may_change=True)
    threads: int | None = _key(None, "torch CPU threads; null: torch's default", resume_may_change=True)
    progress: bool = _key(True, "show a progress bar", resume_may_change=True)
    loggers: tuple[Literal["tensorboard", "mlflow", "wandb"], ...] = _key(
        ("tensorboard",), "where scalars, image previews, the config and eval metrics go: tensorboard (RUN_DIR/tb), "
        "mlflow (a file store in RUN_DIR/mlruns; pip install latentprior[mlflow]), wandb (offline, in "
        "RUN_DIR/wandb; pip install latentprior[wandb])", resume_may_change=True)
    # Speed options (training/performance.py). None of them changes the algorithm; amp changes the arithmetic
    # (tests/training/test_performance.py bounds the first steps' losses against fp32), so only amp is fixed for a run.
    # Those marked kept_by_run change the rounding, so a run keeps the value it was created with: a resume takes
    # it from the checkpoint's config, whatever the config passed says (training/run.py; docs/reproducibility.md).
    amp: Literal["off", "bf16", "fp16"] = _key(
        "off", "autocast the updates' forward passes to bf16 or fp16 (fp16 adds a GradScaler)")
    compile: bool = _key(False, "torch.compile encoder, decoder, prior and discriminator (state_dict keys "
                                "unchanged)", resume_may_change=True)
    # On by default since it measured faster on the CPU for every net (one thread: infogan 1.02-1.04x, conv4
    # 1.1-1.2x, resnet 1.7x, unet 1.3x); runs created before record false and keep it.
    channels_last: bool = _key(True, "NHWC memory format for the conv nets and their batches (a run keeps the "
                                     "value it was created with)", resume_may_change=True, kept_by_run=True)
    # fused, the default: one in-place kernel per parameter, on the CPU as on CUDA (with channels_last, the paper's
    # MNIST step 1.25-1.3x faster on the CPU than the loop and NCHW). auto: the rule of runs created before fused
    # was the default, which their config.yaml says and which keeps its meaning there.
    adam_impl: Literal["auto", "loop", "foreach", "fused"] = _key(
        "fused", "Adam's implementation (objectives/optim.py): fused, loop, foreach, or auto (fused on CUDA, the "
        "per-parameter loop elsewhere: the rule of older runs); a run keeps the value it was created with",
        resume_may_change=True, kept_by_run=True)
    cuda_graphs: Literal["auto", "on", "off"] = _key(
        "auto", "capture each step as a CUDA graph and replay it; auto = on for one CUDA process without fp16 "
        "(GradScaler syncs with the host), off elsewhere", resume_may_change=True)
    sync_bn: bool = _key(False, "multi-process (torchrun) only: BatchNorm statistics over the global batch instead "
                                "of each process's shard")
    # the estimate covers weights, gradients, Adam's moments, the training images and a checkpoint's serialised copy
    # (training/memory.py), computed before anything is built; activations are not counted, hence 90 %
    max_memory_gb: float | None = _key(
        None, "refuse to start when the memory the run's states need exceeds this many GiB; null: 90% of the "
        "device's memory (the GPU's, or the RAM a CPU run may use); 0: no check", resume_may_change=True)

    def __post_init__(self) -> None:
        _at_least(self, "train", epochs=0, prior_epochs=0, batch_size=1, log_every=1, checkpoint_every=1,
                  samples_every=0, images_every=0)
        _check(self.threads is None or self.threads >= 1, f"train.threads must be >= 1 or null, got {self.threads}")
        _check(len(set(self.loggers)) == len(self.loggers), f"train.loggers names a logger twice: {list(self.loggers)}")
        _check(self.max_memory_gb is None or self.max_memory_gb >= 0,
               f"train.max_memory_gb must be >= 0 (0: no check) or null, got {self.max_memory_gb}")
        _check(self.lr_halve_every is None or self.lr_halve_every >= 0,
               f"train.lr_halve_every must be > 0 epochs (0 or null: never), got {self.lr_halve_every}")
        _check(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device) is not None,
               f"train.device: {self.device!r} is not valid; choose auto, cpu, mps, cuda or cuda:N")

    def kept_from(self, created: TrainConfig) -> TrainConfig:
        """This section for resuming a run created with ``created``: the fields marked ``kept_by_run`` (the
        speed options that change the rounding) take the run's own values, so that it continues exactly."""
        kept = {f.name: getattr(created, f.name) for f in fields(self) if f.metadata.get("kept_by_run")}
        return replace(self, **kept)


@dataclass(frozen=True)
class Config:
    """One run: everything needed to rebuild the model and continue training."""

    data: DataConfig = _section(DataConfig, "the dataset")
    net: NetConfig = _section(NetConfig, "encoder/decoder networks")
    prior: PriorConfig = _section(PriorConfig, "the latent prior p(z)")
    model: ModelConfig = _section(ModelConfig, "latent size, encoder kind and reconstruction term")
    objective: ObjectiveConfig = _section(ObjectiveConfig, "the bilevel objective and its optimizers")
    train: TrainConfig = _section(TrainConfig, "the training loop")

    def __post_init__(self) -> None:
        if self.objective.kind == "aae":
            _check(self.prior.kind in ("adversarial", "normal", "custom"), f"objective.kind 'aae' needs prior.kind "
                   f"'adversarial', 'normal' or 'custom', got '{self.prior.kind}'")
        if self.objective.kind == "vae":
            _check(self.prior.has_density, f"objective.kind 'vae' needs a prior with a density "
                   f"({', '.join(map(repr, DENSITY_PRIORS))}), got '{self.prior.kind}'")
            _check(self.model.encoder == "gaussian", "objective.kind 'vae' needs model.encoder 'gaussian'")
        if self.objective.kind == "factorvae":
            _check(self.prior.kind == "normal", f"objective.kind 'factorvae' is a VAE with a fixed N(0, I) prior: "
                   f"set prior.kind 'normal', got '{self.prior.kind}'")
            _check(self.model.encoder == "gaussian", "objective.kind 'factorvae' needs model.encoder 'gaussian'")
        if self.prior.is_flow:
            _check(self.model.latent_dim >= 2, f"prior.kind '{self.prior.kind}' is a flow and needs "
                   f"model.latent_dim >= 2 (each layer conditions part of z on the rest), got {self.model.latent_dim}")
        if self.prior.kind == "vamp":  # a mixture of the encoder's Gaussian posteriors q(z | u_k)
            _check(self.model.encoder == "gaussian", "prior.kind 'vamp' needs model.encoder 'gaussian'")
        if self.model.likelihood in BINARY_LIKELIHOODS:
            _check(self.net.output == "sigmoid", f"model.likelihood '{self.model.likelihood}' reads the decoder's "
                   f"output as probabilities in [0, 1]: set net.output 'sigmoid', got '{self.net.output}'")
        if self.prior.disc_activation != "relu":
            _check(self.objective.kind in DISCRIMINATOR_OBJECTIVES, f"prior.disc_activation only applies to "
                   f"objective.kind 'aae' or 'factorvae' (a latent discriminator), but objective.kind is "
                   f"'{self.objective.kind}'; remove prior.disc_activation")
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
        if cond != "none":
            _check(self.net.encoder is None and self.net.decoder is None, f"net.encoder and net.decoder (your own "
                   f"networks) are for unconditional models, but data.condition is '{cond}'")
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

    Not part of :class:`Config`: evaluation never changes a run, so a run's config does not hold it. ``n`` and
    ``n_ref`` are checked against the test set by :meth:`check_test_set` once the dataset is known.
    Metric names are checked against the metric registry by the evaluation package, which owns that list.
    """

    metrics: tuple[str, ...] = _key(("fid", "pr", "kid"), "metric names of the registry (latentprior.evaluation."
                                                          "registry), e.g. fid, pr, kid, nll, lpips")
    n: int = _key(10000, "generated samples (at most the test set's size)")
    n_ref: int = _key(0, "test images on the reference side, at most the test set's size; 0: n (e.g. n 5000, n_ref "
                         "10000 scores 5,000 samples against MNIST's whole test set)")
    batch_size: int = _key(100, "images per forward pass (changes the speed, not the result)")
    nll_k: int = _key(100, "importance samples per test image for the IW-NLL")
    seed: int = _key(0, "seed of the generated set, which depends on (seed, n) only")
    lpips_net: Literal["alex", "vgg"] = _key("alex", "trunk of the LPIPS sample-diversity metric")
    lpips_pairs: int = _key(1000, "generated pairs the LPIPS diversity averages over")
    attributes: str = _key("default", "attribute set of the separability classifier (evaluation.attributes)")
    separability_n: int = _key(5000, "generated samples for separability; the most confident half per attribute "
                                     "is kept")
    # 1000 paths give a standard error of 2.0-3.1 % of the value on the MNIST study's models (VAE, beta-VAE,
    # flow zT and z0)
    ppl_n: int = _key(1000, "paths of the perceptual path length (StyleGAN uses 100,000); with ppl_max_n, per block")
    ppl_epsilon: float = _key(1e-4, "step along a PPL path; distances are scaled by 1/epsilon^2")
    ppl_max_n: int = _key(0, "adaptive PPL: with ppl_max_n > ppl_n, blocks of ppl_n paths are drawn until the "
                             "standard error is below ppl_rel_se x the value or ppl_max_n paths are drawn; 0: "
                             "exactly ppl_n paths (every record states the paths, the standard error and the test)")
    ppl_rel_se: float = _key(0.05, "adaptive PPL: the target standard error relative to the value")
    ppl_crop: Literal["none", "face"] = _key(
        "none", "face: StyleGAN's crop of aligned faces before LPIPS, rows [3c, 7c) and columns [2c, 6c) of an H x W "
        "image, c = H // 8 (the 32 x 32 face of a 64 x 64 CelebA image); none: the whole image")
    # sampling temperature tau of the generated side of fid, pr and kid (Prior.sample): tau eps for a flow's base
    # noise, tau^2 Sigma_k for a mixture; 1: the untempered prior. A record at tau != 1 is kept apart from tau = 1's
    temperature: float = _key(1.0, "sampling temperature of the generated samples (fid, pr, kid): flows "
                                   "f^-1(tau eps), mixtures tau^2 Sigma_k; 1 is the prior itself; records at tau != 1 "
                                   "go to RUN_DIR/eval/temperature=TAU/")

    def __post_init__(self) -> None:
        _check(len(self.metrics) >= 1, "eval.metrics must name at least one metric")
        _check(0 < self.temperature < float("inf"), f"eval.temperature must be a finite number > 0, got "
               f"{self.temperature}")
        _check(self.n >= 2, f"eval.n must be >= 2 (a covariance needs two samples), got {self.n}")
        _at_least(self, "eval", n_ref=0, batch_size=1, nll_k=1, lpips_pairs=1, separability_n=4, ppl_n=1)
        _check(self.ppl_epsilon > 0, f"eval.ppl_epsilon must be > 0, got {self.ppl_epsilon}")
        _check(self.ppl_max_n >= 0, f"eval.ppl_max_n must be >= 0 (0: exactly ppl_n paths), got {self.ppl_max_n}")
        _check(0 < self.ppl_rel_se < 1, f"eval.ppl_rel_se must be in (0, 1), got {self.ppl_rel_se}")

    def check_test_set(self, dataset: str, size: int) -> None:
        """``n`` and ``n_ref`` against the test set of ``dataset`` (``size`` images): the reference side must hold
        as many images as asked, else the numbers are not the protocol the config states (``latentprior eval``
        and sweeps both ask here)."""
        _check(self.n <= size, f"eval.n = {self.n} exceeds the {dataset} test set ({size} images), which the "
               f"reference side is drawn from; set eval.n (--n, or a sweep's --eval-n) to at most {size}")
        _check(self.n_ref <= size, f"eval.n_ref = {self.n_ref} exceeds the {dataset} test set ({size} images); set "
               f"eval.n_ref (--n-ref) to at most {size} (0: n)")


# Priors a finished run can be given after training (latentprior train-prior RUN --prior KIND): Ghosh et al.'s
# Gaussian mixture by EM, Dai & Wipf's second-stage VAE, and every learnable density kind fitted by maximum
# likelihood on the encoded training set.
EXPOST_PRIORS = ("gmm", "two_stage", *FLOW_PRIORS, "vamp")
_NETWORK_EXPOST = (*FLOW_PRIORS, "two_stage")  # read layers and hidden
_GRADIENT_EXPOST = (*FLOW_PRIORS, "vamp", "two_stage")  # fitted by Adam: read epochs, batch_size, lr


@dataclass(frozen=True)
class ExPostPriorConfig:
    """A prior fitted into a finished run after training, on its encoded training set, without touching the
    autoencoder (``latentprior train-prior RUN --prior KIND --set prior.KEY=VALUE``; latentprior.training.expost).

    Stored with the fitted prior in ``RUN_DIR/priors/<name>/``, so the prior is rebuilt from its checkpoint alone.
    Options a kind cannot use are refused, as for ``prior:``; null means the kind's default (see each field).
    """

    kind: Literal["gmm", "two_stage", "realnvp", "glow", "maf", "nsf", "vamp"] = _key(
        "gmm", "gmm: a Gaussian mixture by EM (scikit-learn; Ghosh et al.'s RAE recipe); two_stage: Dai & Wipf's "
        "second-stage VAE over z; realnvp, glow, maf, nsf, vamp: that prior kind by maximum likelihood on z")
    layers: int | None = _key(None, "flows: layers (realnvp couplings, glow steps, maf/nsf layers; null 8); "
                                    "two_stage: hidden layers of its encoder and decoder MLPs (null 2)")
    hidden: int | None = _key(None, "flows and two_stage: width of each network (null 256)")
    components: int | None = _key(None, "gmm: components; vamp: pseudo-inputs (null 10)")
    covariance: Literal["full", "diagonal"] | None = _key(None, "gmm: full or diagonal covariances (null full)")
    bins: int | None = _key(None, "nsf: spline bins per dimension (null 8)")
    latents: Literal["mean", "sample"] | None = _key(
        None, "the codes the prior is fitted on: mean of q(z|x), or one draw z ~ q(z|x) per training image (the "
        "aggregate posterior q(z)); null: mean for gmm (RAE), sample for the others")
    epochs: int | None = _key(None, "passes over the latents (not gmm); null: 50, two_stage 100")
    batch_size: int | None = _key(None, "minibatch of latents (not gmm); null 256")
    lr: float | None = _key(None, "Adam's learning rate (not gmm); null 1e-3")
    max_iter: int | None = _key(None, "gmm: EM iterations (null 100)")
    n_init: int | None = _key(None, "gmm: EM restarts, the best kept (null 1)")
    n_importance: int | None = _key(None, "two_stage: importance draws of its log-density estimate (null 64)")
    seed: int = _key(0, "the fit's randomness: initial weights, batch order, EM start, posterior draws")

    def __post_init__(self) -> None:
        for key, kinds in (("layers", _NETWORK_EXPOST), ("hidden", _NETWORK_EXPOST), ("components", ("gmm", "vamp")),
                           ("covariance", ("gmm",)), ("bins", ("nsf",)), ("epochs", _GRADIENT_EXPOST),
                           ("batch_size", _GRADIENT_EXPOST), ("lr", _GRADIENT_EXPOST), ("max_iter", ("gmm",)),
                           ("n_init", ("gmm",)), ("n_importance", ("two_stage",))):
            _check(getattr(self, key) is None or self.kind in kinds, f"prior.{key} does not apply to an ex-post "
                   f"prior of kind '{self.kind}' (only to {', '.join(map(repr, kinds))}); remove prior.{key}")
        for key, low in (("layers", 1), ("hidden", 1), ("components", 1), ("bins", 2), ("epochs", 1),
                         ("batch_size", 1), ("max_iter", 1), ("n_init", 1), ("n_importance", 1)):
            value = getattr(self, key)
            _check(value is None or value >= low, f"prior.{key} must be >= {low} or null, got {value}")
        _check(self.lr is None or self.lr > 0, f"prior.lr must be > 0 or null, got {self.lr}")

    @property
    def is_flow(self) -> bool:
        return self.kind in FLOW_PRIORS

    @property
    def resolved(self) -> dict[str, Any]:
        """The options the kind reads, with every null replaced by the kind's default."""
        defaults: dict[str, Any] = {"latents": "mean" if self.kind == "gmm" else "sample", "seed": self.seed}
        if self.kind in _NETWORK_EXPOST:
            defaults |= {"layers": 2 if self.kind == "two_stage" else 8, "hidden": 256}
        if self.kind in ("gmm", "vamp"):
            defaults["components"] = 10
        if self.kind == "gmm":
            defaults |= {"covariance": "full", "max_iter": 100, "n_init": 1}
        if self.kind == "nsf":
            defaults["bins"] = 8
        if self.kind in _GRADIENT_EXPOST:
            defaults |= {"epochs": 100 if self.kind == "two_stage" else 50, "batch_size": 256, "lr": 1e-3}
        if self.kind == "two_stage":
            defaults["n_importance"] = 64
        return {k: v if getattr(self, k) is None else getattr(self, k) for k, v in defaults.items()}
