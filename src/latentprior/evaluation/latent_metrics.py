"""The registry's latent-space metrics: linear separability and perceptual path length, in Z_T and Z_0.

    separability_zt / separability_z0   exp(Σ H(Y_i | X_i)) of the attribute classifier's labels given an SVM
                                         on the code (:mod:`~latentprior.evaluation.separability`)
    ppl_zt / ppl_z0                      LPIPS-VGG16 path length: slerp where the endpoints are N(0, I)
                                         (Z_0, and Z_T of a fixed-prior VAE), lerp in Z_T of a learned prior
                                         (:mod:`~latentprior.evaluation.ppl`)

The ``z0`` metrics need a flow prior and are refused by their check otherwise. Separability trains (once,
then reads from the cache) the attribute classifier of the run's dataset on its training split, with the
default :class:`~latentprior.evaluation.classifier.ClassifierSettings`; its test accuracy goes into the record.
Settings come from :class:`~latentprior.config.EvalConfig`: ``attributes``, ``separability_n``, ``ppl_n``,
``ppl_max_n``, ``ppl_rel_se``, ``ppl_epsilon``, ``ppl_crop``, ``seed``, ``batch_size``. A PPL record states
its interpolation, crop, clamping, the paths drawn and the standard error in its protocol.
"""

from __future__ import annotations

from .attributes import AttributeSet, attribute_set, resolve_kind
from .cache import cache_key_digest
from .classifier import ClassifierSettings, classifier_key, load_or_train_classifier
from .diversity import lpips_network, lpips_trunk_path
from .inputs import EvalInputs
from .ppl import perceptual_path_length
from .separability import SPACES, check_space, model_separability

__all__ = ["check_ppl", "check_separability", "ppl_record", "separability_record", "shared_lpips"]


def _train_split(x: EvalInputs):
    from latentprior.data import load_split

    return load_split(x.run_config.data, "train", x.data_dir)


def check_separability(x: EvalInputs, space: str) -> None:
    check_space(x.model.prior, space)
    resolve_kind(x.run_config.data.name, x.eval.attributes)


def check_ppl(x: EvalInputs, space: str) -> None:
    check_space(x.model.prior, space)
    lpips_trunk_path("vgg", x.weights_dir)


def _separabilities(x: EvalInputs, space: str) -> tuple[dict, AttributeSet, str, dict]:
    """Every asked separability space in one go (one training-split load, classifier and sampling pass), kept
    in ``x.shared`` for the other space's metric: ({space: record}, attributes, classifier digest, report)."""
    done = x.shared.get("separability")
    if done is None or space not in done[0]:
        asked = x.eval.metrics  # the runner's normalised names
        spaces = tuple(s for s in SPACES if s == space or f"separability_{s.lower()}" in asked)
        train = _train_split(x)
        attrs = attribute_set(train, x.eval.attributes)
        settings = ClassifierSettings()
        clf, report = load_or_train_classifier(train, x.test, attrs, settings, cache_dir=x.cache_dir,
                                               device=x.device, progress=x.progress)
        recs = model_separability(x.model, clf, n=x.eval.separability_n, seed=x.eval.seed, spaces=spaces,
                                  names=attrs.names, batch_size=x.eval.batch_size, progress=x.progress)
        done = x.shared["separability"] = (recs, attrs, cache_key_digest(classifier_key(train, attrs, settings)),
                                           report)
    return done


def separability_record(x: EvalInputs, space: str) -> dict:
    recs, attrs, digest, report = _separabilities(x, space)
    rec = recs[space]
    protocol = {"dataset": x.protocol["dataset"], "seed": x.eval.seed, "n": x.eval.separability_n,
                "space": space, "attributes": attrs.key(), "classifier": digest,
                "classifier_test_accuracy": report["test_accuracy"],
                "samples": "the generated set of (seed, n), as FID's", "svm": "sklearn LinearSVC() defaults",
                "kept": "most confident half per attribute (StyleGAN)", "method": "Karras et al. 2019, 4.2"}
    return {"value": rec["value"], "conditional_entropy": rec["conditional_entropy"],
            "label_entropy": rec["label_entropy"], "svm_converged": rec["svm_converged"], "protocol": protocol}


def shared_lpips(x: EvalInputs, net: str, side: int | None = None) -> tuple:
    """:func:`~latentprior.evaluation.diversity.lpips_network` for images of side ``side`` (None: the test
    images'), loaded (and its trunk hashed) once per evaluation, whichever metrics read it."""
    side = min(x.test.images.shape[-2:]) if side is None else side
    key = f"lpips_{net}_{side}"
    if key not in x.shared:
        x.shared[key] = lpips_network(net, side, weights_dir=x.weights_dir, device=x.device)
    return x.shared[key]


_CROP_PROTOCOL = {"none": "none", "face": "StyleGAN face crop: rows [3c, 7c), columns [2c, 6c), c = H // 8"}


def ppl_record(x: EvalInputs, space: str) -> dict:
    ev = x.eval
    side = min(x.test.images.shape[-2:])
    lp, proto = shared_lpips(x, "vgg", 4 * (side // 8) if ev.ppl_crop == "face" else side)
    rec = perceptual_path_length(x.model, lp, n=ev.ppl_n, seed=ev.seed, space=space, epsilon=ev.ppl_epsilon,
                                 crop=ev.ppl_crop, max_n=ev.ppl_max_n, rel_se=ev.ppl_rel_se,
                                 batch_size=ev.batch_size, progress=x.progress)
    adaptive = ev.ppl_max_n > ev.ppl_n
    sample = (f"blocks of {ev.ppl_n} paths until std_err < {ev.ppl_rel_se:g} x value, at most {ev.ppl_max_n}"
              if adaptive else f"{ev.ppl_n} paths")
    # "n" is the configured ppl_n (what decides whether a stored record is reused); "paths" is what was drawn
    protocol = {"dataset": x.protocol["dataset"], "seed": ev.seed, "n": ev.ppl_n, "paths": rec["n"],
                "sample_size": sample, "target_rel_se": ev.ppl_rel_se,
                "space": space, "interpolation": rec["method"], "crop": _CROP_PROTOCOL[ev.ppl_crop],
                "images": "decoder mean clamped to [0, 1]", "epsilon": ev.ppl_epsilon, "t": "U(0, 1) per path",
                "trim": "1st-99th percentile kept", "method": "Karras et al. 2019, 4.1"} | proto
    return {"value": rec["value"], "median": rec["median"], "std_err": rec["std_err"], "kept": rec["kept"],
            "paths": rec["n"], "converged": rec["converged"], "protocol": protocol}
