"""Hostile and damaged dataset files: the idx, CIFAR-10 and CelebA readers give a correct result or one line.

Budget (examples per target, times ``LATENTPRIOR_FUZZ_SCALE`` for a full run; see fuzz_support.py): idx 300,
CIFAR damaged bytes 150, CIFAR hostile pickles 100, CelebA attribute list 200, partition list 150, JPEG
decode 100. Forged headers that claim huge sizes have their own fixed tests below.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from latentprior.data import DataError, celeba, cifar, idx, load_dataset
from tests.fuzz_support import damaged, fuzz, outcome

# ------------------------------------------------------------------------------------------------- idx

SIZES = st.integers(0, 5) | st.sampled_from([2**32 - 1, 2**31, 10**6, 10**4, 60000])


@st.composite
def idx_files(draw: st.DrawFn) -> tuple[int, bytes, bytes]:
    """(ndim asked for, raw idx bytes before compression, file bytes): wrong magic, wrong dtype code, header
    sizes up to 2^32 - 1, payloads shorter or longer than claimed, non-gzip and damaged gzip streams."""
    ndim = draw(st.sampled_from([1, 3]))
    dtype = draw(st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]) | st.integers(0, 255))
    file_ndim = draw(st.sampled_from([ndim, ndim, 1, 3]) | st.integers(0, 255))
    zeros = draw(st.sampled_from([b"\0\0"]) | st.binary(min_size=2, max_size=2))
    dims = draw(st.lists(SIZES, min_size=0, max_size=4))
    claimed = int(np.prod(dims, dtype=object)) if dims else 1
    n = min(claimed, 600) + draw(st.integers(-3, 3))
    payload = draw(st.binary(min_size=max(n, 0), max_size=max(n, 0)))
    raw = zeros + bytes([dtype, file_ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    packed = gzip.compress(raw)
    data = draw(st.sampled_from([packed, packed, packed, raw]) | damaged(packed, header=24))
    return ndim, raw, data


@given(idx_files())
@fuzz(300)
def test_fuzz_idx_reader(case):
    ndim, raw, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x-idx-ubyte.gz"
        path.write_bytes(data)
        out = outcome(lambda: idx.read_idx(path, ndim))
    if out.error is not None:
        assert path.name in str(out.error)
        return
    # Accepted: the header was right and the array is exactly the payload it describes.
    arr = out.value
    assert raw[:4] == bytes([0, 0, 0x08, ndim]) and arr.dtype == np.uint8
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    assert arr.shape == dims and arr.tobytes() == raw[4 + 4 * ndim :]


def test_idx_header_claiming_1e12_items_is_refused_before_allocating(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    dims = (10**4, 10**4, 10**4)  # 10^12 bytes claimed by a 30-byte file
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in dims) + b"\0" * 16))
    out = outcome(lambda: idx.read_idx(path, 3), max_bytes=1 << 20)
    assert out.error is not None and "claims 1000000000000 bytes" in str(out.error)


def test_idx_gzip_bomb_is_not_decompressed_beyond_the_claim(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (2, 28, 28))
    path.write_bytes(gzip.compress(header + bytes(64 << 20), compresslevel=1))  # 64 MiB of zeros, ~64 KiB on disk
    out = outcome(lambda: idx.read_idx(path, 3), max_bytes=8 << 20)
    assert out.error is not None and "more than 1568 payload bytes" in str(out.error)


# ----------------------------------------------------------------------------------------------- CIFAR


def _cifar_dir(root: Path, test_batch: bytes) -> Path:
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}, 2))
    (folder / "test_batch").write_bytes(test_batch)
    return root


def _valid_batch(n: int = 3) -> bytes:
    rows = np.arange(n * 3072, dtype=np.uint8).reshape(n, 3072)
    return pickle.dumps({b"batch_label": b"x", b"data": rows, b"labels": list(range(n))}, protocol=2)


def _load_cifar_test(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        root = _cifar_dir(Path(tmp), data)
        out = outcome(lambda: load_dataset("cifar10", "test", root, verify=False))
    if out.value is not None:  # accepted: the shape and label contract of the loader holds
        ds = out.value
        assert ds.image_shape == (3, 32, 32) and len(ds.labels) == len(ds)
        assert len(ds) == 0 or 0 <= int(ds.labels.min()) <= int(ds.labels.max()) <= 9
    else:
        assert "test_batch" in str(out.error) or "batches.meta" in str(out.error)
    return out


@given(damaged(_valid_batch()))
@fuzz(150)
def test_fuzz_cifar_damaged_bytes(data):
    _load_cifar_test(data)


class _Reduce:
    """Pickles as ``func(*args)``: how a hostile file asks the unpickler to call an allowed global."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _core():
    return cifar._numpy_core()


HUGE = st.sampled_from([10**6, 10**7, 2**31, 2**40])
# Objects a hostile CIFAR file may hold where the arrays and labels belong: wrong dtypes and shapes, labels
# out of range or beyond int64, and allowed numpy constructors asked to allocate what a tiny file claims.
HOSTILE = st.one_of(
    st.builds(lambda s, d: np.zeros(s, d), st.sampled_from([(2, 3072), (2, 3071), (3072,), (0, 3072)]),
              st.sampled_from(["u1", "i1", "f4", "i8", "O"])),
    st.lists(st.integers(-(2**80), 2**80) | st.floats() | st.text(max_size=3), max_size=4),
    HUGE.map(lambda n: _Reduce(np.ndarray, (n, 3072), "u1")),
    HUGE.map(lambda n: _Reduce(_core().multiarray._reconstruct, np.ndarray, (n, 3072), "u1")),
    st.just(_Reduce(np.dtype, "O")),
    HUGE.map(lambda n: _Reduce(_Reduce(np.dtype, "O"), (n,))),
    st.just(_Reduce(__import__("codecs").encode, "x" * 8, "bz2_codec")),
)


@given(data=HOSTILE, labels=HOSTILE | st.just([0, 1]), protocol=st.sampled_from([2, 4, 5]))
@fuzz(100)
def test_fuzz_cifar_hostile_pickles(data, labels, protocol):
    try:
        blob = pickle.dumps({b"data": data, b"labels": labels}, protocol=protocol)
    except (pickle.PicklingError, TypeError, ValueError):
        return  # not representable as a pickle: nothing to feed the reader
    _load_cifar_test(blob)


def test_cifar_pickle_claiming_a_huge_array_allocates_nothing():
    blob = pickle.dumps({b"data": _Reduce(np.ndarray, (10**7, 3072), "u1"), b"labels": []}, protocol=2)
    out = _load_cifar_test(blob)  # 30 GB claimed by a 100-byte file
    assert out.error is not None and "numpy.ndarray" in str(out.error)


# ---------------------------------------------------------------------------------------------- CelebA

N_ATTR = 3


def _attr_text(rows: list[tuple[str, list[int]]]) -> bytes:
    lines = [str(len(rows)), " ".join(f"a{k}" for k in range(N_ATTR))]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in vals) for name, vals in rows]
    return ("\n".join(lines) + "\n").encode()


VALID_ATTRS = _attr_text([("000001.jpg", [1, -1, 1]), ("000002.jpg", [-1, -1, 1])])


def _reference_attributes(raw: bytes) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """A slow, token-by-token parser: what an accepted file must mean (ASCII whitespace separates tokens)."""
    lines = raw.split(b"\n")
    n, names = int(lines[0]), tuple(lines[1].decode("ascii").split())
    rows = [line.split() for line in lines[2:] if line.strip()]
    assert len(rows) == n and all(len(r) == len(names) + 1 for r in rows)
    assert all(v in (b"1", b"-1") for r in rows for v in r[1:])
    values = np.array([[v == b"1" for v in r[1:]] for r in rows], dtype=np.int8).reshape(n, len(names))
    return [r[0].decode("ascii") for r in rows], names, values


TOKENS = st.sampled_from(["1", "-1", "0", "11", "1-1", "-11", "--1", "x", "1.0", "", " ", "\t", "\r"])


@st.composite
def attribute_files(draw: st.DrawFn) -> bytes:
    """Damaged bytes of a valid list, or a list rebuilt from odd tokens and a header count that may lie."""
    if draw(st.booleans()):
        return draw(damaged(VALID_ATTRS))
    rows = draw(st.lists(st.lists(TOKENS, min_size=N_ATTR - 1, max_size=N_ATTR + 1), max_size=4))
    count = draw(st.sampled_from([len(rows), len(rows), len(rows) + 1, -1, 10**12]))
    lines = [str(count), " ".join(f"a{k}" for k in range(N_ATTR))]
    lines += [f"{i:06d}.jpg " + " ".join(r) for i, r in enumerate(rows)]
    return ("\n".join(lines) + "\n").encode()


def _read_list(reader, name: str, data: bytes, gz: bool):
    """``reader`` on ``data`` saved as the plain or gzipped list file ``name``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
        out = outcome(lambda: reader(path))
    assert out.error is None or path.name in str(out.error)
    return out


@given(attribute_files(), st.booleans())
@fuzz(200)
def test_fuzz_celeba_attribute_list(data, gz):
    out = _read_list(celeba.read_attributes, "list_attr_celeba.txt", data, gz)
    if out.error is None:
        files, names, attrs = out.value
        ref_files, ref_names, ref_attrs = _reference_attributes(data)
        assert (files, names) == (ref_files, ref_names) and np.array_equal(attrs, ref_attrs)


@given(damaged(b"000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n") | st.text(max_size=80).map(str.encode), st.booleans())
@fuzz(150)
def test_fuzz_celeba_partition_list(data, gz):
    out = _read_list(celeba.read_partition, "list_eval_partition.txt", data, gz)
    if out.error is None:
        assert all(v in (0, 1, 2) for v in out.value.values())


def _jpeg(w: int = 178, h: int = 218) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 30, 200)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _forge_jpeg_size(data: bytes, w: int, h: int) -> bytes:
    """Rewrite the frame header (SOF0) so the file claims ``w``×``h`` pixels."""
    at = data.index(b"\xff\xc0") + 5
    return data[:at] + h.to_bytes(2, "big") + w.to_bytes(2, "big") + data[at + 4 :]


VALID_JPEG = _jpeg()


@given(damaged(VALID_JPEG, header=700))
@fuzz(100)
def test_fuzz_celeba_jpeg_decode(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "000001.jpg"
        path.write_bytes(data)
        out = outcome(lambda: celeba._decode(path, 64))
    if out.error is None:
        assert out.value.shape == (3, 64, 64) and out.value.dtype == np.uint8
    else:
        assert path.name in str(out.error)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(20000, 20000), (12000, 9000), (65535, 1)])
def test_celeba_jpeg_claiming_a_huge_frame_is_refused_before_decoding(tmp_path, size):
    path = tmp_path / "000001.jpg"
    path.write_bytes(_forge_jpeg_size(VALID_JPEG, *size))
    with pytest.raises(DataError, match=rf"000001\.jpg.*({size[0]}×{size[1]}|{size[0] * size[1]} pixels)"):
        celeba._decode(path, 64)
