"""Your own encoder, decoder and prior, named in a config by import path: which modules may run, and the calls.

A config names a factory as ``package.module:attribute`` (``net.encoder``, ``net.decoder``, ``prior.factory``) — a
function or a class — with keyword arguments (``net.encoder_args``, ...). The library adds the shapes it knows::

    encoder = f(image_shape=(C, H, W), out_dim=2 * D or D, **net.encoder_args)   # x (B, C, H, W) -> (B, out_dim)
    decoder = f(latent_dim=D, image_shape=(C, H, W), **net.decoder_args)          # z (B, D) -> (B, C, H, W)
    prior   = f(dim=D, **prior.factory_args)                                      # the Prior contract

The run's ``config.yaml`` and checkpoint record the path and arguments, so ``resume``, ``sample``, ``eval`` and
sweeps rebuild the same modules.

**Which code runs.** Loading such a run imports the named module and calls the attribute: code named by a file.
So a factory runs only when its module is allowed — listed, or under a package listed, in the environment
variable ``LATENTPRIOR_FACTORY_MODULES`` (comma-separated, e.g. ``mynets,lab.models``) or passed to
:func:`allow_factory_modules` — for a run you train and one you were sent alike. A run directory from someone
else that names ``os:system`` is refused in one line, before anything is imported. Only import paths are accepted,
never file paths: a run directory cannot bring its own code, only name code already installed where it is loaded.
Errors (not allowed, cannot be imported, not callable, wrong arguments, wrong return) are one line naming the key.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any

from torch import nn

from latentprior.config import NetConfig, PriorConfig
from latentprior.config.sections import is_object_marker
from latentprior.errors import UserError

__all__ = ["ALLOW_ENV", "FactoryError", "allow_factory_modules", "allowed_factory_modules", "resolve_factory",
           "call_factory", "build_factory_encoder", "build_factory_decoder", "build_factory_prior", "object_marker"]

ALLOW_ENV = "LATENTPRIOR_FACTORY_MODULES"
_ALLOWED: set[str] = set()  # added from Python by allow_factory_modules, for this process


class FactoryError(ValueError, UserError):
    """A factory named in a config is not allowed, cannot be imported or called, or returns the wrong thing."""


def allow_factory_modules(*modules: str) -> None:
    """Allow factories from these modules (and the packages under them) in this process, as listing them in
    ``LATENTPRIOR_FACTORY_MODULES`` does. Call it only for code you trust: loading a run imports and calls it."""
    for m in modules:
        if not isinstance(m, str) or not all(part.isidentifier() for part in m.split(".")):
            raise FactoryError(f"allow_factory_modules: {m!r} is not a module name (e.g. 'mynets' or 'lab.models')")
        _ALLOWED.add(m)


def allowed_factory_modules() -> set[str]:
    """The allowed module prefixes: ``LATENTPRIOR_FACTORY_MODULES`` and :func:`allow_factory_modules`'s."""
    env = {m.strip() for m in os.environ.get(ALLOW_ENV, "").split(",") if m.strip()}
    return env | _ALLOWED


def _is_allowed(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in allowed_factory_modules())


def object_marker(obj: object) -> str:
    """How a module passed from Python is recorded in a config: ``<package.module.Class object>``."""
    cls = type(obj)
    return f"<{cls.__module__}.{cls.__qualname__} object>"


def resolve_factory(path: str, key: str) -> Callable[..., Any]:
    """The callable ``package.module:attribute`` names, once its module is allowed and imported."""
    if is_object_marker(path):
        raise FactoryError(f"{key}: this run's module was a Python object ({path[1:-len(' object>')]}) passed to "
                           "latentprior.Trainer.fit, which no config can rebuild; build the model again and load its "
                           "weights with latentprior.load(run_dir, model), or name a factory (package.module:function)")
    module, _, attribute = path.partition(":")
    if not _is_allowed(module):
        raise FactoryError(f"{key}: {path!r} names module '{module}', which is not allowed to run from a config; if "
                           f"you trust it, list it in {ALLOW_ENV} (e.g. export {ALLOW_ENV}={module.split('.')[0]}) or "
                           f"call latentprior.allow_factory_modules({module.split('.')[0]!r})")
    try:
        obj: Any = importlib.import_module(module)
    except Exception as e:  # ImportError, or anything the module's own code raised while importing
        raise FactoryError(f"{key}: cannot import module '{module}' of {path!r} ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}); is it installed or on PYTHONPATH?") from e
    for name in attribute.split("."):
        if not hasattr(obj, name):
            raise FactoryError(f"{key}: module '{module}' has no attribute '{attribute}' (from {path!r})")
        obj = getattr(obj, name)
    if not callable(obj):
        raise FactoryError(f"{key}: {path!r} is a {type(obj).__name__}, not a function or class")
    return obj


def call_factory(key: str, path: str, args: dict[str, Any], given: dict[str, Any]) -> Any:
    """``factory(**given, **args)``; arguments it does not take are refused in one line before the call (an error
    inside the factory is the factory's own and keeps its traceback)."""
    factory = resolve_factory(path, key)
    clash = sorted(set(args) & set(given))
    if clash:
        raise FactoryError(f"{key}_args: {clash} are set by latentprior ({', '.join(given)}); remove them")
    try:
        inspect.signature(factory).bind(**given, **args)
    except TypeError as e:
        raise FactoryError(f"{key}: {path} does not take the arguments {sorted({**given, **args})} ({e}); a factory "
                           f"is called as f({', '.join(f'{k}=...' for k in given)}, **{key}_args)") from e
    except ValueError:  # no signature to read (some builtins): let the call itself decide
        pass
    return factory(**given, **args)


def _module(out: Any, key: str, path: str, what: str) -> nn.Module:
    if not isinstance(out, nn.Module):
        raise FactoryError(f"{key}: {path} returned a {type(out).__name__}, expected an nn.Module ({what})")
    return out


def build_factory_encoder(net: NetConfig, image_shape: tuple[int, int, int], out_dim: int) -> nn.Module:
    """``net.encoder``'s module: x (B, C, H, W) -> (B, out_dim)."""
    out = call_factory("net.encoder", net.encoder, net.encoder_args,
                       {"image_shape": tuple(image_shape), "out_dim": out_dim})
    return _module(out, "net.encoder", net.encoder, f"x (B, C, H, W) -> (B, {out_dim})")


def build_factory_decoder(net: NetConfig, latent_dim: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """``net.decoder``'s module: z (B, D) -> G(z) (B, C, H, W)."""
    out = call_factory("net.decoder", net.decoder, net.decoder_args,
                       {"latent_dim": latent_dim, "image_shape": tuple(image_shape)})
    return _module(out, "net.decoder", net.decoder, "z (B, D) -> (B, C, H, W)")


def build_factory_prior(pc: PriorConfig, dim: int) -> nn.Module:
    """``prior.factory``'s prior over (B, dim); what it can do is checked against the objective later
    (:func:`latentprior.models.checks.check_model`)."""
    out = call_factory("prior.factory", pc.factory, pc.factory_args, {"dim": dim})
    out = _module(out, "prior.factory", pc.factory, "a Prior: sample(n, generator=None) -> (n, D), log_prob(z)")
    if not callable(getattr(out, "sample", None)):
        raise FactoryError(f"prior.factory: {pc.factory} returned a {type(out).__name__} without sample(n, "
                           "generator=None); a prior follows latentprior.priors.Prior")
    return out
