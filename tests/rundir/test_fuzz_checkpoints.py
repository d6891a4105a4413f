"""Fuzzing the checkpoint loader: damaged files are refused in one line; a pickle with code in it never runs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from latentprior.config import Config, config_to_dict
from latentprior.errors import UserError
from latentprior.rundir.checkpoints import FORMAT, load_checkpoint, save_checkpoint
from tests.fuzz_support import damaged, fuzz, outcome

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
    st.sampled_from(["auto", "vae", "aae", "realnvp", "adversarial", "normal", "gaussian", "bf16", "cpu", "mnist"]),
)


VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=3), max_leaves=8)


def _valid_run(root: Path) -> Path:
    run = root / "run"
    save_checkpoint(run, Config(), 5, {"model": {"w": torch.arange(3.0)}, "image_shape": [1, 28, 28]})
    return run


def _payload(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _install(run: Path, data: bytes, *, fix_hash: bool) -> None:
    """Put ``data`` where latest.json points; with ``fix_hash`` the index vouches for it, so the loader must
    survive its content rather than stop at the hash."""
    index_path = run / "checkpoints" / "latest.json"
    index = json.loads(index_path.read_text())
    (run / "checkpoints" / index["file"]).write_bytes(data)
    if fix_hash:
        index.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        index_path.write_text(json.dumps(index))


PAYLOADS = st.one_of(
    VALUES.map(_payload),
    st.dictionaries(st.sampled_from(["format", "config", "step", "model"]), VALUES, max_size=4).map(_payload),
    st.builds(lambda c: _payload({"format": FORMAT, "step": 1, "config": c}), VALUES),
)


INDEXES = st.one_of(
    VALUES.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda f, s: json.dumps({"file": f, "sha256": s, "step": 5}).encode(),
              st.sampled_from(["../../x", "/etc/hostname", "", ".", "step_00000005.pt"]) | VALUES, VALUES),
)


@st.composite
def checkpoint_damage(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    kind = draw(st.sampled_from(["step", "payload", "index"]))
    if kind == "step":
        with tempfile.TemporaryDirectory() as tmp:
            valid = (_valid_run(Path(tmp)) / "checkpoints" / "step_00000005.pt").read_bytes()
        return kind, draw(damaged(valid, header=300)), draw(st.booleans())
    if kind == "payload":
        return kind, draw(PAYLOADS), True
    return kind, draw(INDEXES | damaged(b'{"file": "step_00000005.pt", "sha256": "00", "step": 5}')), False


@given(checkpoint_damage())
@fuzz(100)
def test_fuzz_checkpoint_loader(case):
    kind, data, fix_hash = case
    with tempfile.TemporaryDirectory() as tmp:
        run = _valid_run(Path(tmp))
        if kind == "index":
            (run / "checkpoints" / "latest.json").write_bytes(data)
        else:
            _install(run, data, fix_hash=fix_hash)
        out = outcome(lambda: load_checkpoint(run), max_bytes=256 << 20)
    if out.error is None:
        assert out.value["format"] == FORMAT and isinstance(out.value["config"], Config)


class _Touch:
    """Unpickling this runs ``os.system('touch MARKER')``: the payload a hostile checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("container", ["torch.save", "pickle"])
def test_checkpoint_with_code_in_its_pickle_is_refused_and_never_runs_it(tmp_path, container):
    run = _valid_run(tmp_path)
    marker = tmp_path / "pwned"
    obj = {"format": FORMAT, "step": 5, "config": config_to_dict(Config()), "model": _Touch(marker)}
    data = _payload(obj) if container == "torch.save" else pickle.dumps(obj, protocol=2)
    _install(run, data, fix_hash=True)  # the index vouches for it: only weights_only stands in the way
    with pytest.raises(UserError, match="could not be read as a checkpoint") as err:
        load_checkpoint(run)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    shutil.rmtree(run)


