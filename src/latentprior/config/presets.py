"""The configs that ship inside the package (``latentprior/presets/``, the repository's ``configs/`` folder), so
that ``latentprior train default --out RUN`` works from an installed wheel as ``configs/default.yaml`` does in a
checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from latentprior.config.typed import ConfigError

__all__ = ["resolve_config", "preset_names"]


def _root():
    return resources.files("latentprior") / "presets"


def preset_names() -> list[str]:
    """Built-in preset names (``default``, ``cpu/mnist_vae_flow``, ...), sorted."""
    names: list[str] = []

    def walk(folder, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".yaml"):
                names.append(prefix + entry.name[: -len(".yaml")])

    root = _root()
    if root.is_dir():
        walk(root, "")
    return sorted(names)


def resolve_config(text: str | Path) -> Path:
    """``text`` if it names a file; else the built-in preset of that name (``default`` or ``default.yaml``,
    ``cpu/mnist_vae_flow``); else a one-line :class:`ConfigError` listing the presets."""
    path = Path(text)
    if path.is_file():
        return path
    name = str(text).removesuffix(".yaml").removeprefix("configs/")
    parts = name.split("/")
    if all(p and not p.startswith(".") for p in parts):
        preset = _root().joinpath(*parts[:-1], parts[-1] + ".yaml")
        if preset.is_file():
            return Path(str(preset))
    raise ConfigError(f"config file not found: {text} (nor a built-in preset; presets: {', '.join(preset_names())})")
