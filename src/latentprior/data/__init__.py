"""Dataset files -> one in-memory :class:`ImageDataset` (a uint8 tensor), with checksums and opt-in download.

>>> ds = load_dataset("mnist", "train", "/data")       # or set LATENTPRIOR_DATA_DIR
>>> x = ds.batch(torch.randint(len(ds), (64,)))         # (64, 1, 28, 28) float32 in [0, 1]
"""

from .dataset import ImageDataset
from .files import DATA_DIR_ENV, DataError, md5sum, resolve_data_dir
from .load import DATASETS, SPLITS, load_dataset

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "SPLITS",
    "DataError",
    "ImageDataset",
    "load_dataset",
    "md5sum",
    "resolve_data_dir",
]
