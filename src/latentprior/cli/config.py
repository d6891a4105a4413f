"""``latentprior config``: a resolved config (``show``) and every key with its type, default, choices and
description (``keys``), generated from the config dataclasses (latentprior.config.describe)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "key_groups", "config_markdown"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print a resolved config, or every config key with its description")
    verbs = p.add_subparsers(dest="config_verb", required=True)
    s = verbs.add_parser("show", help="print the resolved config (every key, defaults filled in) as YAML")
    s.add_argument("config", help="a YAML config, a run folder (its saved config), or a built-in preset name "
                   "(e.g. default, cpu/mnist_vae_flow)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable)")
    s.set_defaults(run=_show, distributed=False)
    k = verbs.add_parser("keys", help="every key: type, default, allowed values, description")
    k.add_argument("--markdown", action="store_true", help="docs/config.md's Markdown instead of one line per key")
    k.set_defaults(run=_keys, distributed=False)


def key_groups() -> list[tuple[str, str, list]]:
    """(title, intro, keys) of the run config, the eval config, an ex-post prior's options and a sweep file's
    resources block."""
    from latentprior.config import Config, EvalConfig, ExPostPriorConfig
    from latentprior.config.describe import describe
    from latentprior.rundir import RunDir
    from latentprior.sweeps.grid import Resources

    saved = RunDir("RUN_DIR").config.as_posix()
    return [("Run config", f"A run's YAML file (`latentprior train CONFIG`) and its resolved copy `{saved}`.",
             describe(Config)),
            ("Evaluation", "`latentprior eval` options (`--n`, `--n-ref`, ...) and a sweep file's `eval:` block.",
             describe(EvalConfig, "eval.")),
            ("Ex-post priors", "A prior fitted into a finished run (`latentprior train-prior RUN --prior KIND --set "
             "prior.KEY=VALUE`), stored with it in `RUN_DIR/priors/<name>/`; these `prior.` keys are not the run "
             "config's.", describe(ExPostPriorConfig, "prior.")),
            ("Sweep resources", "A sweep file's `resources:` block (docs/sweeps.md).",
             describe(Resources, "resources."))]


def config_markdown() -> str:
    """The text of docs/config.md."""
    from latentprior.config.describe import keys_markdown

    return keys_markdown(key_groups())


def _keys(args: argparse.Namespace) -> str:
    from latentprior.config.describe import keys_text

    if args.markdown:
        return config_markdown()
    return "".join(keys_text(docs) for _, _, docs in key_groups())


def _show(args: argparse.Namespace) -> str:
    import yaml

    from latentprior.config import apply_overrides, config_from_dict, config_to_dict, read_yaml
    from latentprior.config.presets import resolve_config
    from latentprior.rundir import RunDir

    path = RunDir(args.config).config if Path(args.config).is_dir() else resolve_config(args.config)
    cfg = config_from_dict(read_yaml(path) or {})
    if args.overrides:
        cfg = apply_overrides(cfg, args.overrides)
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
