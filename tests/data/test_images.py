"""A folder of your own images: mixed sizes and modes, a corrupt file, a split that is the same on every load, a
cache keyed on content, training and FID references on it."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from latentprior.config import ConfigError, config_from_dict
from latentprior.data import DataError, load_split
from latentprior.data.images import load_image_folder, scan_image_folder


def _write_folder(root, n=60, seed=0):
    """n PNG/JPEG files, grayscale and RGB, of mixed sizes and aspect ratios, in subfolders; one corrupt file,
    one hidden file and one text file."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = int(rng.integers(12, 80)), int(rng.integers(12, 80))
        a = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        im = Image.fromarray(a) if i % 2 else Image.fromarray(a[..., 0])  # RGB and L
        sub = root / f"group{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        im.save(sub / f"img{i:03d}.{'JPG' if i % 5 == 0 else 'png'}")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    (root / ".hidden.png").write_bytes(b"not even a png")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTPRIOR_CACHE_DIR", str(tmp_path / "cache"))
    return _write_folder(tmp_path / "images")


def _record(cache_root):
    (path,) = (cache_root / "images").glob("*.json")
    return json.loads(path.read_text())


def test_the_split_is_the_same_on_every_load_and_records_the_corrupt_file(folder, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="latentprior.data.images"):
        train = load_image_folder(folder, "train", resolution=28, channels=1)
        test = load_image_folder(folder, "test", resolution=28, channels=1)
    assert train.image_shape == (1, 28, 28) and len(train) + len(test) == 60 and len(test) == 6  # round(60 x 0.1)
    assert train.name == test.name and train.name.startswith("images:")
    warned = [r.getMessage() for r in caplog.records if "could not be decoded" in r.getMessage()]
    assert len(warned) == 1 and "skipped 1 of 61 files" in warned[0] and "corrupt.png" in warned[0]
    record = _record(tmp_path / "cache")
    assert [u["file"] for u in record["unreadable"]] == ["corrupt.png"]
    assert len(record["test"]) == 6 and not set(record["test"]) & set(record["train"])

    # a second load (from the cache) and a third (decoded again, the cache gone) give the same split and pixels
    again = load_image_folder(folder, "test", resolution=28, channels=1)
    for f in (tmp_path / "cache" / "images").iterdir():
        f.unlink()
    fresh = load_image_folder(folder, "test", resolution=28, channels=1)
    assert torch.equal(again.images, test.images) and torch.equal(fresh.images, test.images)
    assert _record(tmp_path / "cache")["test"] == record["test"]


def test_the_split_follows_content_not_names(folder, tmp_path):
    before = set(_scan(folder)["test"])
    (folder / "group0").rename(folder / "renamed")  # same files, other paths
    after = {p.replace("renamed/", "group0/") for p in _scan(folder)["test"]}
    assert after == before
    Image.fromarray(np.full((30, 30), 7, np.uint8)).save(folder / "new.png")  # one more file moves at most one
    grown = {p.replace("renamed/", "group0/") for p in _scan(folder)["test"]}
    assert len(grown - before) <= 1 and len(before - grown) <= 1


def _scan(folder):
    return scan_image_folder(folder, resolution=28, channels=1)[2]


def test_identical_files_land_in_the_same_split(tmp_path):
    root = tmp_path / "dups"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(20):
        a = rng.integers(0, 256, size=(16, 16), dtype=np.uint8)
        for copy in ("a", "b"):
            Image.fromarray(a).save(root / f"{i:02d}{copy}.png")
    _, mask, record = scan_image_folder(root, resolution=28, channels=1, test_fraction=0.2, cache_dir=tmp_path / "c")
    assert mask.sum() == 8 and all(f"{f[:2]}b.png" in record["test"] for f in record["test"])


def test_centre_crop_and_resize_and_channels(tmp_path):
    """A 60 x 30 image whose centre 30 x 30 square is white and sides black: the crop keeps only white; RGB reds
    become the luma of red in grayscale and stay red in RGB."""
    root = tmp_path / "shapes"
    root.mkdir()
    a = np.zeros((30, 60), np.uint8)
    a[:, 15:45] = 255
    Image.fromarray(a).save(root / "wide.png")
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(root / "red.png")
    gray, _, rec = scan_image_folder(root, resolution=32, channels=1, test_fraction=0.5, cache_dir=tmp_path / "c")
    rgb, _, _ = scan_image_folder(root, resolution=32, channels=3, test_fraction=0.5, cache_dir=tmp_path / "c")
    order = {f: i for i, f in enumerate(sorted(["wide.png", "red.png"]))}
    wide, r = order["wide.png"], order["red.png"]
    assert gray.shape == (2, 1, 32, 32) and rgb.shape == (2, 3, 32, 32)
    assert (gray[wide] == 255).all()  # no black column survives the centre crop
    assert abs(int(gray[r].mean()) - 76) <= 1  # ITU-R 601 luma of pure red: 0.299 x 255
    assert (rgb[r, 0] == 255).all() and (rgb[r, 1:] == 0).all()


def test_a_folder_without_readable_images_is_refused(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="0 of 1 images could be decoded"):
        scan_image_folder(tmp_path / "bad", cache_dir=tmp_path / "c")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="no PNG/JPEG images"):
        scan_image_folder(tmp_path / "empty", cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="is not a folder"):
        scan_image_folder(tmp_path / "absent", cache_dir=tmp_path / "c")


@pytest.mark.parametrize("data, message", [
    ({"name": "images"}, "needs data.path"),
    ({"name": "images", "path": "x", "resolution": 48}, "data.resolution must be one of [28, 32, 64]"),
    ({"name": "images", "path": "x", "channels": 2}, "data.channels must be 1"),
    ({"name": "images", "path": "x", "test_fraction": 1.0}, "data.test_fraction must be in (0, 1)"),
    ({"name": "mnist", "resolution": 28}, "data.resolution only applies to data.name 'images'"),
    ({"name": "images", "path": "x", "channels": 1, "condition": "grayscale"}, "needs colour images"),
])
def test_folder_settings_are_checked_next_to_their_fields(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        config_from_dict({"data": data})


def test_a_folder_trains_and_its_fid_reference_is_keyed_on_content(folder, tmp_path, monkeypatch):
    from latentprior.evaluation import runner as runner_mod
    from latentprior.evaluation.cache import FeatureCache
    from latentprior.training import train

    class Cheap:
        def __call__(self, x):
            return x.float().flatten(1)[:, :32]

        def protocol(self):
            return {"network": "cheap"}

    cfg = config_from_dict({
        "data": {"name": "images", "path": str(folder), "resolution": 28, "channels": 1, "test_fraction": 0.25},
        "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4}, "objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},
        "train": {"epochs": 1, "batch_size": 15, "log_every": 1, "checkpoint_every": 2, "progress": False}})
    summary = train(cfg, tmp_path / "run")
    assert summary["step"] == 3  # 45 train images / 15
    monkeypatch.setattr(runner_mod, "make_feature_extractor", lambda device: Cheap())
    rec = runner_mod.evaluate_run(tmp_path / "run", _eval(["fid"], n=15), progress=False)["fid"]
    test = load_split(cfg.data, "test")
    assert rec["protocol"]["dataset"] == test.name and rec["protocol"]["n_ref"] == 15
    key = {"dataset": test.name, "split": "test", "data_sha1": rec["protocol"]["data_sha1"], "count": 15,
           "network": "cheap"}
    assert FeatureCache(tmp_path / "cache").load_statistics(key) is not None  # the reference's statistics, cached


def _eval(metrics, n):
    from latentprior.config import EvalConfig

    return EvalConfig(metrics=tuple(metrics), n=n)


def test_a_relative_folder_does_not_make_a_sweep_run_look_changed(tmp_path, monkeypatch):
    from latentprior.sweeps.checks import config_changes

    monkeypatch.chdir(tmp_path)
    saved = {"data": {"name": "images", "path": str(tmp_path / "faces")}}  # what the run recorded: absolute
    assert config_changes(saved, {"data": {"name": "images", "path": "faces"}}) == []
    assert config_changes(saved, {"data": {"name": "images", "path": "other"}}) != []
