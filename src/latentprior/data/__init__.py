"""Dataset files -> one in-memory :class:`ImageDataset` (a uint8 tensor), with checksums and opt-in download.

>>> ds = load_dataset("mnist", "train", "/data")       # or set LATENTPRIOR_DATA_DIR
>>> x = ds.batch(torch.randint(len(ds), (64,)))         # (64, 1, 28, 28) float32 in [0, 1]
"""

from .convert import as_image_dataset
from .dataset import ImageDataset
from .files import DATA_DIR_ENV, DataError, md5sum, resolve_data_dir
from .images import load_image_folder
from .load import DATASETS, SPLITS, load_dataset, load_split

__all__ = [
    "as_image_dataset",
    "DATASETS",
    "DATA_DIR_ENV",
    "SPLITS",
    "DataError",
    "ImageDataset",
    "load_dataset",
    "load_image_folder",
    "load_split",
    "md5sum",
    "resolve_data_dir",
]
