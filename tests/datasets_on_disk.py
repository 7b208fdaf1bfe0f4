"""Writers of tiny MNIST-style and CIFAR-10 copies in the real on-disk formats torchvision reads.

They let tests load the vision data modules offline. The images are seeded noise, the labels cycle 0..9.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
IDX_UBYTE = 0x08  # the IDX type code for unsigned bytes


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: magic (0, 0, type, ndim), big-endian uint32 sizes, then the raw uint8 values."""
    header = struct.pack(">BBBB", 0, 0, IDX_UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_mnist_idx(
    root: str | Path, n_train: int, n_test: int, kind: str = "MNIST", seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write ``root/<kind>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` plus .gz; return the arrays.

    ``kind`` is torchvision's class name (``MNIST``, ``FashionMNIST``). torchvision reads the unpacked files
    and, with ``download=False`` and before downloading alike, checks only that they exist; the .gz archives
    are written too because a real download leaves them there.
    """
    raw = Path(root) / kind / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, prefix, count in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            content = idx_bytes(array)
            (raw / name).write_bytes(content)
            (raw / f"{name}.gz").write_bytes(gzip.compress(content))
        arrays[split] = (images, labels.astype(np.int64))
    return arrays


def cifar_batch(images: np.ndarray, labels: np.ndarray, name: str) -> dict:
    """One CIFAR-10 python batch: rows of 3072 bytes (1024 red, 1024 green, 1024 blue, row-major)."""
    return {
        "batch_label": name,
        "labels": labels.tolist(),
        "data": images.reshape(len(images), 3 * 32 * 32),
        "filenames": [f"{name}_{index}.png" for index in range(len(images))],
    }


def write_cifar10_pickles(
    root: str | Path, n_per_batch: int, n_test: int, seed: int = 0, learnable: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write ``root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``; return the arrays.

    The returned images are (N, 3, 32, 32) uint8; labels cycle 0..9. ``learnable``: each class has its own
    colour under the noise (which flips and shifts keep), so a model can learn the labels.

    The files have CIFAR-10's layout but not its MD5s, so torchvision's own CIFAR10 class (which checks the
    MD5s) rejects them; ``CIFAR10Data(download=False)`` reads them because it only checks presence.
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_images, train_labels = [], []
    batches = [(f"data_batch_{index}", n_per_batch) for index in range(1, 6)] + [("test_batch", n_test)]
    class_colours = rng.integers(48, 208, size=(10, 3, 1, 1))
    arrays = {}
    for name, count in batches:
        images = rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
        labels = np.arange(count) % 10
        if learnable:
            noise = rng.integers(-48, 49, size=(count, 3, 32, 32))
            images = (class_colours[labels] + noise).clip(0, 255).astype(np.uint8)
        with open(folder / name, "wb") as file:
            pickle.dump(cifar_batch(images, labels, name), file)
        if name == "test_batch":
            arrays["test"] = (images, labels)
        else:
            train_images.append(images)
            train_labels.append(labels)
    meta = {"num_cases_per_batch": n_per_batch, "label_names": CIFAR10_CLASSES, "num_vis": 3 * 32 * 32}
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump(meta, file)
    arrays["train"] = (np.concatenate(train_images), np.concatenate(train_labels))
    return arrays
