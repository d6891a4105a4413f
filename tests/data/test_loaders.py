"""Data layer: checksums, structure checks, every loader on generated files and on ../shared, downloads.

Generated files (tiny idx, pickle and JPEG sets in ``tmp_path``) make every loader testable without
``../shared``; the shared copies add full-size checks and skip only when that folder is absent.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentprior.data import (
    DATA_DIR_ENV,
    DataError,
    ImageDataset,
    celeba,
    cifar,
    download,
    files,
    idx,
    load_dataset,
    md5sum,
    resolve_data_dir,
)

MNIST_MD5 = idx.IDX_SOURCES["mnist"].md5


# ----------------------------------------------------------------------------------------- generators


def write_idx(path: Path, array: np.ndarray, *, dims: tuple[int, ...] | None = None) -> Path:
    """Gzipped uint8 idx file; ``dims`` overrides the header (to fake a length mismatch)."""
    dims = array.shape if dims is None else dims
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return path


def make_idx_set(data_dir: Path, folder: str, n: dict[str, int], seed: int = 0) -> dict[str, tuple]:
    """Four small MNIST-format files; returns {split: (images (N, 28, 28), labels (N,))}."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = rng.integers(0, 256, size=(n[split], 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n[split], dtype=np.uint8)
        write_idx(data_dir / folder / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(data_dir / folder / f"{prefix}-labels-idx1-ubyte.gz", y)
        out[split] = (x, y)
    return out


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # bytes keys, protocol 2: what build_batches.py writes


def make_cifar(data_dir: Path, n: int = 4, seed: int = 0) -> dict[str, tuple]:
    """The official layout with ``n`` images per batch; returns {split: (rows (N, 3072), labels (N,))}."""
    rng = np.random.default_rng(seed)
    folder = data_dir / "cifar10" / "cifar-10-batches-py"
    out: dict[str, list] = {"train": [], "test": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        batch = {b"batch_label": b"x", b"data": rows, b"labels": labels}
        if name == "test_batch":  # a batch re-pickled by Python 3 code may have str keys: both must load
            batch = {k.decode(): v for k, v in batch.items()}
        write_pickle(folder / name, batch)
        out["test" if name == "test_batch" else "train"].append((rows, labels))
    write_pickle(folder / "batches.meta", {b"label_names": [b"c%d" % i for i in range(10)]})
    return {k: (np.concatenate([r for r, _ in v]), np.concatenate([y for _, y in v])) for k, v in out.items()}


CELEBA_PARTS = [0, 0, 0, 1, 1, 2]  # 3 train, 2 valid, 1 test
CELEBA_ATTRS = 40


def celeba_colour(i: int) -> tuple[int, int, int]:
    return (40 + 30 * i, 200 - 25 * i, 90 + 10 * i)


def make_celeba(data_dir: Path, *, gz_partition: bool = True) -> np.ndarray:
    """Six 178×218 JPEGs whose central 140×140 box has its own colour and whose border is black.

    Returns the attributes (6, 40) in 0/1. The attribute list is plain text, the partition gzipped,
    so both spellings are exercised.
    """
    root = data_dir / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    attrs = rng.integers(0, 2, size=(len(CELEBA_PARTS), CELEBA_ATTRS))
    lines = [str(len(CELEBA_PARTS)), " ".join(f"attr_{k}" for k in range(CELEBA_ATTRS)) + " "]
    for i, row in enumerate(attrs):
        im = Image.new("RGB", (178, 218), (0, 0, 0))
        im.paste(celeba_colour(i), (19, 39, 159, 179))
        im.save(root / "img_align_celeba" / f"{i + 1:06d}.jpg", quality=95)
        lines.append(f"{i + 1:06d}.jpg " + " ".join(f"{2 * v - 1:2d}" for v in row))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    part = "".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(CELEBA_PARTS)).encode()
    if gz_partition:
        (root / "list_eval_partition.txt.gz").write_bytes(gzip.compress(part))
    else:
        (root / "list_eval_partition.txt").write_bytes(part)
    return attrs.astype(np.int8)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ errors and checksums


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv(DATA_DIR_ENV)
    with pytest.raises(DataError, match="--data-dir") as err:
        load_dataset("mnist", "test")
    assert DATA_DIR_ENV in str(err.value)


def test_unknown_name_or_split_lists_known():
    with pytest.raises(ValueError, match="fashion_mnist"):
        load_dataset("fashion", "train")
    with pytest.raises(ValueError, match="train, test"):
        load_dataset("mnist", "valid")


def test_missing_file_names_path_md5_and_source(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "train", tmp_path)
    msg = str(err.value)
    expected = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    for part in (str(expected), MNIST_MD5[expected.name], "https://ossci-datasets.s3.amazonaws.com/mnist/"):
        assert part in msg
    for hint in ("download=True", "--download", "verify=False", "--no-verify"):
        assert hint in msg


def test_checksum_mismatch_names_file_expected_and_actual(tmp_path):
    make_idx_set(tmp_path, "mnist", {"train": 3, "test": 2})
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(DataError, match="checksum mismatch") as err:
        load_dataset("mnist", "test", tmp_path)
    msg = str(err.value)
    assert path.name in msg and MNIST_MD5[path.name] in msg and md5_of(path) in msg


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_file_fails_clearly(tmp_path, verify):
    make_idx_set(tmp_path, "mnist", {"train": 3, "test": 2})
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])  # cut inside the deflate stream and its trailer
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "test", tmp_path, verify=verify)
    msg = str(err.value)
    assert path.name in msg
    if verify:  # caught by the checksum, before any reading
        assert MNIST_MD5[path.name] in msg
    else:  # caught by the gzip stream itself
        assert "gzip" in msg


def test_idx_header_must_match_byte_count(tmp_path):
    x = np.zeros((3, 28, 28), np.uint8)
    write_idx(tmp_path / "short.gz", x, dims=(4, 28, 28))  # header claims one image more than stored
    with pytest.raises(DataError, match=r"short\.gz.*truncated or corrupt"):
        idx.read_idx(tmp_path / "short.gz", ndim=3)
    write_idx(tmp_path / "labels.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="magic"):
        idx.read_idx(tmp_path / "labels.gz", ndim=3)  # a label file where images are expected


def test_label_count_and_range_are_checked(tmp_path):
    make_idx_set(tmp_path, "mnist", {"train": 3, "test": 2})
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    write_idx(labels, np.array([1, 2, 3], np.uint8))
    with pytest.raises(DataError, match="2 images but"):
        load_dataset("mnist", "test", tmp_path, verify=False)
    write_idx(labels, np.array([1, 12], np.uint8))
    with pytest.raises(DataError, match="label 12"):
        load_dataset("mnist", "test", tmp_path, verify=False)


def test_md5_is_cached_per_path_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    calls = []
    real = files._hash_file
    monkeypatch.setattr(files, "_hash_file", lambda p, g: calls.append(p) or real(p, g))
    assert md5sum(path) == hashlib.md5(b"abc").hexdigest()
    assert md5sum(path) == hashlib.md5(b"abc").hexdigest()
    assert len(calls) == 1
    path.write_bytes(b"abcd")  # new size: the cached digest must not be reused
    assert md5sum(path) == hashlib.md5(b"abcd").hexdigest()
    assert len(calls) == 2


# ---------------------------------------------------------------------------- MNIST and Fashion-MNIST


@pytest.mark.parametrize("name,folder", [("mnist", "mnist"), ("fashion_mnist", "fashion-mnist")])
def test_generated_idx_round_trip(tmp_path, name, folder):
    arrays = make_idx_set(tmp_path, folder, {"train": 5, "test": 3})
    for split, (x, y) in arrays.items():
        ds = load_dataset(name, split, tmp_path, verify=False)
        assert (ds.name, ds.split, len(ds), ds.image_shape) == (name, split, len(y), (1, 28, 28))
        assert ds.images.dtype == torch.uint8 and ds.images.is_contiguous()
        assert ds.labels.dtype == torch.int64 and ds.attributes is None
        assert torch.equal(ds.images[:, 0], torch.from_numpy(x))
        assert torch.equal(ds.labels, torch.from_numpy(y.astype(np.int64)))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_shared_idx_datasets(shared_dir, name, split, n):
    if shared_dir is None:
        pytest.skip("../shared is absent")
    ds = load_dataset(name, split, shared_dir / "data")  # byte-exact copies: verify=True passes
    assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.images.min() == 0 and ds.images.max() == 255
    counts = torch.bincount(ds.labels, minlength=10)
    assert counts.shape == (10,) and counts.min() > n // 20  # every class present, none tiny


# ------------------------------------------------------------------------------------------- CIFAR-10


def test_generated_cifar_round_trip_and_mismatch(tmp_path):
    arrays = make_cifar(tmp_path)
    for split, (rows, labels) in arrays.items():
        ds = load_dataset("cifar10", split, tmp_path, verify=False)
        assert ds.images.shape == (len(rows), 3, 32, 32) and ds.images.dtype == torch.uint8
        # Rows are channel-major: the first 1024 bytes are the red plane.
        assert torch.equal(ds.images[1, 0], torch.from_numpy(rows[1, :1024].reshape(32, 32)))
        assert torch.equal(ds.images[1, 2], torch.from_numpy(rows[1, 2048:].reshape(32, 32)))
        assert torch.equal(ds.labels, torch.from_numpy(labels.astype(np.int64)))
    with pytest.raises(DataError, match="checksum mismatch") as err:
        load_dataset("cifar10", "train", tmp_path)
    assert "data_batch_1" in str(err.value) and cifar.CIFAR10_FILES["data_batch_1"] in str(err.value)


def test_truncated_cifar_pickle_fails_clearly(tmp_path):
    make_cifar(tmp_path)
    path = tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match="test_batch.*not a readable CIFAR pickle"):
        load_dataset("cifar10", "test", tmp_path, verify=False)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code(tmp_path):
    make_cifar(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch"
    write_pickle(path, {b"data": _Evil(marker), b"labels": []})
    with pytest.raises(DataError, match=r"refusing to unpickle global (os|posix)\.system") as err:
        load_dataset("cifar10", "test", tmp_path, verify=False)
    assert "test_batch" in str(err.value)
    assert not marker.exists()
    with pytest.raises(DataError, match="builtins.eval"):
        cifar.RestrictedUnpickler(io.BytesIO(pickle.dumps((eval, ("1",))))).load()


@pytest.mark.slow
def test_shared_cifar_is_approximate(cifar10_dir):
    with pytest.raises(DataError, match="checksum mismatch") as err:
        load_dataset("cifar10", "test", cifar10_dir)
    assert "test_batch" in str(err.value) and cifar.CIFAR10_FILES["test_batch"] in str(err.value)
    for split, n in (("train", 50000), ("test", 10000)):
        ds = load_dataset("cifar10", split, cifar10_dir, verify=False)
        assert ds.images.shape == (n, 3, 32, 32) and ds.images.dtype == torch.uint8
        assert ds.images.is_contiguous() and ds.images.max() == 255
        assert torch.equal(torch.bincount(ds.labels, minlength=10), torch.full((10,), n // 10))


# --------------------------------------------------------------------------------------------- digits


def test_digits():
    from sklearn.datasets import load_digits

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape == (1500, 1, 28, 28) and test.images.shape == (297, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.images.min() == 0 and train.images.max() == 255
    ref = load_digits()
    assert torch.equal(test.labels, torch.from_numpy(ref.target[1500:]).long())
    # Bilinear upsampling keeps each image's mean brightness (up to the edge handling).
    means = train.images.float().mean(dim=(1, 2, 3)) / 255
    ref_means = torch.from_numpy(ref.images[:1500].mean(axis=(1, 2)) / 16).float()
    assert torch.allclose(means, ref_means, atol=0.03)


# --------------------------------------------------------------------------------------------- CelebA


def test_celeba_generated(tmp_path, monkeypatch):
    attrs = make_celeba(tmp_path)
    first = {}
    for split, code in celeba.CELEBA_SPLITS.items():
        ds = load_dataset("celeba", split, tmp_path, verify=False)
        rows = [i for i, p in enumerate(CELEBA_PARTS) if p == code]
        assert ds.images.shape == (len(rows), 3, 64, 64) and ds.images.dtype == torch.uint8
        assert ds.labels is None and ds.attributes.dtype == torch.int8
        assert ds.attribute_names == tuple(f"attr_{k}" for k in range(CELEBA_ATTRS))
        assert torch.equal(ds.attributes, torch.from_numpy(attrs[rows]))
        # The crop keeps exactly the coloured 140×140 box: no black border survives the resize. (JPEG
        # ringing at the box edge, which is not on the 8×8 block grid, darkens the outermost pixels a little.)
        for img, i in zip(ds.images, rows, strict=True):
            diff = (img.int() - torch.tensor(celeba_colour(i)).view(3, 1, 1)).abs()
            assert diff[:, 1:-1, 1:-1].max() <= 12 and diff.max() <= 60
        first[split] = ds
    caches = sorted(p.name for p in (tmp_path / "celeba").glob("img_align_celeba.*.npy"))
    assert [c.split(".")[1:3] for c in caches] == [["test", "64px"], ["train", "64px"], ["valid", "64px"]]

    def no_decoding(*args):
        raise AssertionError("decoded although a cache exists")

    monkeypatch.setattr(celeba, "_decode", no_decoding)
    again = load_dataset("celeba", "train", tmp_path, verify=False)
    assert torch.equal(again.images, first["train"].images)
    # The cache is keyed by size: another size must decode again.
    with pytest.raises(AssertionError, match="decoded although"):
        celeba.load_celeba("train", tmp_path, verify=False, size=32)


def test_celeba_checksums_and_missing_images(tmp_path, shared_dir):
    make_celeba(tmp_path)
    with pytest.raises(DataError, match="checksum mismatch") as err:
        load_dataset("celeba", "test", tmp_path)
    msg = str(err.value)
    assert "list_attr_celeba.txt" in msg and celeba.CELEBA_MD5["list_attr_celeba.txt"] in msg
    if shared_dir is None:
        pytest.skip("../shared is absent: no official CelebA lists to verify")
    # The official lists (gzipped) verify against the md5s of the plain text; the images are absent.
    for name in ("list_attr_celeba.txt", "list_eval_partition.txt"):
        (tmp_path / "celeba" / name).unlink(missing_ok=True)
        (tmp_path / "celeba" / f"{name}.gz").unlink(missing_ok=True)
        shutil.copy(shared_dir / "data" / "celeba" / f"{name}.gz", tmp_path / "celeba")
        assert md5sum(tmp_path / "celeba" / f"{name}.gz", gunzip=True) == celeba.CELEBA_MD5[name]
    with pytest.raises(DataError, match="19962 of 19962 CelebA test images missing") as err:
        load_dataset("celeba", "test", tmp_path, download=True)
    assert "182638.jpg" in str(err.value) and "not downloaded automatically" in str(err.value)


def test_celeba_missing_lists_say_where_to_get_them(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("celeba", "train", tmp_path, download=True)
    msg = str(err.value)
    assert "list_attr_celeba.txt" in msg and celeba.CELEBA_MD5["list_attr_celeba.txt"] in msg
    assert "mmlab.ie.cuhk.edu.hk" in msg and "download=True cannot fetch it" in msg


# ------------------------------------------------------------------------------------------ downloads


def fetch_from(folder: Path, log: list[str]):
    """A stand-in for download._fetch that copies ``folder/<basename of url>``."""

    def fetch(url: str, dest: Path) -> None:
        log.append(url)
        shutil.copyfile(folder / url.rsplit("/", 1)[1], dest)

    return fetch


def test_download_mnist_with_patched_fetch(tmp_path, monkeypatch):
    arrays = make_idx_set(tmp_path / "upstream", "mnist", {"train": 2, "test": 3})
    src = tmp_path / "upstream" / "mnist"
    for path in src.iterdir():  # make the generated files "official"
        monkeypatch.setitem(MNIST_MD5, path.name, md5_of(path))
    log: list[str] = []
    monkeypatch.setattr(download, "_fetch", fetch_from(src, log))
    ds = load_dataset("mnist", "test", tmp_path / "data", download=True)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(arrays["test"][0]))
    mirror = idx.IDX_SOURCES["mnist"].mirror
    assert log == [mirror + f"t10k-{k}-ubyte.gz" for k in ("images-idx3", "labels-idx1")]
    load_dataset("mnist", "test", tmp_path / "data", download=True)  # present now: nothing fetched
    assert len(log) == 2


def test_failed_or_corrupt_download_leaves_no_file(tmp_path, monkeypatch):
    dest = tmp_path / "data" / "mnist"

    def dies_midway(url: str, out: Path) -> None:
        out.write_bytes(b"\x1f\x8b partial")
        raise ConnectionError("connection reset")

    monkeypatch.setattr(download, "_fetch", dies_midway)
    with pytest.raises(DataError, match="connection reset"):
        load_dataset("mnist", "train", tmp_path / "data", download=True)
    assert list(dest.iterdir()) == []

    monkeypatch.setattr(download, "_fetch", lambda url, out: out.write_bytes(b"not the real file"))
    with pytest.raises(DataError, match=MNIST_MD5["train-images-idx3-ubyte.gz"]):
        load_dataset("mnist", "train", tmp_path / "data", download=True)
    assert list(dest.iterdir()) == []


def test_download_real_fetch_from_file_url(tmp_path, monkeypatch, shared_dir):
    if shared_dir is None:
        pytest.skip("../shared is absent: no official MNIST files to serve")
    source = idx.IDX_SOURCES["mnist"]
    mirror = (shared_dir / "data" / "mnist").as_uri() + "/"
    monkeypatch.setitem(idx.IDX_SOURCES, "mnist", dataclasses.replace(source, mirror=mirror))
    ds = load_dataset("mnist", "test", tmp_path, download=True)  # the real _fetch, official md5s
    assert ds.images.shape == (10000, 1, 28, 28)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def test_download_cifar_archive(tmp_path, monkeypatch):
    upstream = tmp_path / "upstream"
    arrays = make_cifar(upstream)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(upstream / "cifar10" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar, "CIFAR10_ARCHIVE", (archive.as_uri(), md5_of(archive)))
    for path in (upstream / "cifar10" / "cifar-10-batches-py").iterdir():
        monkeypatch.setitem(cifar.CIFAR10_FILES, path.name, md5_of(path))
    ds = load_dataset("cifar10", "test", tmp_path / "data", download=True)  # verified against patched md5s
    assert torch.equal(ds.labels, torch.from_numpy(arrays["test"][1].astype(np.int64)))
    assert not list((tmp_path / "data" / "cifar10").glob(".*"))  # no staging folder or .part left


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "ok/../../evil.txt", "link"])
def test_extract_tar_rejects_unsafe_members(tmp_path, member):
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        good = tarfile.TarInfo("cifar-10-batches-py/good.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        bad = tarfile.TarInfo(member)
        if member == "link":
            bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
        else:
            bad.size = 4
        tar.addfile(bad, io.BytesIO(b"evil") if member != "link" else None)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DataError, match="refusing to extract bad.tar"):
        download.extract_tar(archive, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


# -------------------------------------------------------------------------------------- ImageDataset


def test_image_dataset_batch_subset_and_checks():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (10, 3, 4, 5), generator=g, dtype=torch.uint8)
    ds = ImageDataset(images=images, labels=torch.arange(10), name="toy", split="train")
    assert len(ds) == 10 and ds.image_shape == (3, 4, 5)
    idx_ = torch.tensor([3, 0, 3, 9])
    x = ds.batch(idx_)
    assert x.dtype == torch.float32 and x.shape == (4, 3, 4, 5) and x.device == images.device
    assert 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, images[idx_].float() / 255)
    full = ImageDataset(images=torch.full((2, 1, 2, 2), 255, dtype=torch.uint8))
    assert full.batch(torch.tensor([0, 1])).eq(1.0).all()  # 255 maps exactly to 1
    small = ds.subset(3)
    assert len(small) == 3 and torch.equal(small.labels, torch.arange(3)) and small.name == "toy"
    assert ds.to("cpu") is ds
    assert "n=10" in repr(ds)
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(images=images.float())
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(images=images, labels=torch.arange(9))
    with pytest.raises(ValueError, match="attribute"):
        ImageDataset(images=images, attributes=torch.zeros(10, 2, dtype=torch.int8), attribute_names=("a",))
    with pytest.raises(ValueError, match="subset"):
        ds.subset(11)
    strided = ImageDataset(images=images.permute(0, 1, 3, 2))
    assert strided.images.is_contiguous()
