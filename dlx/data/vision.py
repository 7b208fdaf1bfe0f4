"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision.datasets, kept in memory as uint8 images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dlx.data.augment import (
    PADDING_MODES,
    BatchAugmentations,
    PerSampleTransform,
    RandomCrop,
    random_horizontal_flip,
)
from dlx.data.base import DataMetadata, DataModule
from dlx.data.splits import held_out_split
from dlx.errors import DlxError, did_you_mean

AUGMENTATIONS = ("random_crop", "horizontal_flip", "rotation")
PIXEL_MAX = 255.0

# Train images, train labels, test images, test labels (images uint8 N, C, H, W) and the class names.
OfficialSplits = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str]]


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in sorted(folders, key=lambda folder: len(folder.parts), reverse=True):  # deepest first
        try:
            folder.rmdir()  # only an empty folder; anything a download left in it stays
        except OSError:
            pass


class TorchvisionImageData(DataModule):
    """Shared loading: official train split minus ``val_size`` held-out images, official test split.

    Subclasses name the torchvision data set, its files on disk and its standard normalisation.
    """

    display_name: str
    input_shape: list[int]
    standard_mean: tuple[float, ...]
    standard_std: tuple[float, ...]
    default_augment: tuple[str, ...] = ()
    layout_hint: str  # where the files go under data.root, for error messages
    download_condition = ""  # when torchvision downloads although files are there, for error messages

    def __init__(
        self,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
        root: str = "data",
        download: bool = True,
        val_size: int = 5000,
        split_seed: int = 0,
        normalize: bool = True,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        augment: list[str] | None = None,
        crop_padding: int = 4,
        crop_padding_mode: str = "constant",
        rotation_degrees: float = 10.0,
    ):
        """``augment``: AUGMENTATIONS names applied in order to training images; None = the default.

        ``crop_padding_mode``: what ``random_crop`` shows beyond the border: ``constant`` (black) or
        ``reflect`` (the image mirrored at its edge).

        ``mean``/``std``: per-channel normalisation; None = the data set's standard values.
        """
        super().__init__(
            batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed, drop_last=drop_last
        )
        self.root = Path(root).expanduser()
        self.download, self.val_size, self.split_seed = download, val_size, split_seed
        self.normalize = normalize
        channels = self.input_shape[0]
        mean = list(self.standard_mean if mean is None else mean)
        std = list(self.standard_std if std is None else std)
        for key, values in (("mean", mean), ("std", std)):
            if len(values) != channels:
                raise DlxError(
                    f"data.{key} has {len(values)} values but {self.display_name} images have {channels} "
                    f"channel(s). Give one per channel, e.g. `data.{key}=[{', '.join(['0.5'] * channels)}]`, "
                    f"or `data.{key}=null` for the standard values."
                )
        if any(value <= 0 for value in std):
            raise DlxError(
                f"data.std={std} must be positive in every channel. "
                "Use `data.std=null` for the standard values."
            )
        # With normalize=false the identity statistics keep one formula: (pixels / 255 - mean) / std.
        self.mean = mean if normalize else [0.0] * channels
        self.std = std if normalize else [1.0] * channels
        self.augment = list(self.default_augment if augment is None else augment)
        for name in self.augment:
            if name not in AUGMENTATIONS:
                raise DlxError(
                    f"Unknown augmentation '{name}' in data.augment.{did_you_mean(name, AUGMENTATIONS)} "
                    f"Available: {', '.join(AUGMENTATIONS)}. Type e.g. "
                    "`data.augment=[random_crop,horizontal_flip]`, or `data.augment=[]` for none."
                )
        if crop_padding < 0 or rotation_degrees < 0:
            raise DlxError(
                f"data.crop_padding={crop_padding} and data.rotation_degrees={rotation_degrees} must not be "
                "negative. Type e.g. `data.crop_padding=4 data.rotation_degrees=10`."
            )
        if crop_padding_mode not in PADDING_MODES:
            raise DlxError(
                f"data.crop_padding_mode '{crop_padding_mode}' is unknown."
                f"{did_you_mean(crop_padding_mode, PADDING_MODES)} Choose one of: {', '.join(PADDING_MODES)} "
                "(e.g. `data.crop_padding_mode=reflect`)."
            )
        if crop_padding_mode == "reflect" and crop_padding >= min(self.input_shape[1:]):
            raise DlxError(
                f"data.crop_padding={crop_padding} is too wide to mirror {self.display_name}'s "
                f"{self.input_shape[1]}x{self.input_shape[2]} images: reflect padding must be smaller than "
                "the image. Type e.g. `data.crop_padding=2`, or `data.crop_padding_mode=constant`."
            )
        self.crop_padding, self.crop_padding_mode = crop_padding, crop_padding_mode
        self.rotation_degrees = rotation_degrees
        self.class_names: list[str] = []
        # (mean, std) per device: a data set kept on the GPU is normalised there, without a copy per batch.
        self._statistics: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- what a subclass provides ---------------------------------------------------------------
    def expected_files(self) -> list[Path]:
        raise NotImplementedError

    def read_official_splits(self) -> OfficialSplits:
        """The official train and test splits, read (and downloaded if asked) by torchvision."""
        raise NotImplementedError

    def missing_files_hint(self, missing: list[Path]) -> str:
        return ""

    # -- loading ----------------------------------------------------------------------------------
    def load(self) -> None:
        missing = [path for path in self.expected_files() if not path.is_file()]
        if missing and not self.download:
            raise self.missing_files_error(missing)
        folders = {folder for path in self.expected_files() for folder in path.absolute().parents}
        new_folders = [folder for folder in folders if not folder.exists()]
        try:
            train_images, train_labels, test_images, test_labels, class_names = self.read_official_splits()
        except Exception as error:
            _remove_if_empty(new_folders)  # a download that failed leaves no empty folders behind
            raise self.read_error(error) from error
        indices = held_out_split(len(train_images), self.val_size, self.split_seed)
        self.class_names = class_names
        self.splits = {
            "train": (train_images[indices["train"]], train_labels[indices["train"]]),
            "val": (train_images[indices["val"]], train_labels[indices["val"]]),
            "test": (test_images, test_labels),
        }

    def missing_files_error(self, missing: list[Path]) -> DlxError:
        shown = ", ".join(str(path.relative_to(self.root)) for path in missing[:4])
        if len(missing) > 4:
            shown += f" and {len(missing) - 4} more"
        return DlxError(
            f"data.root '{self.root.absolute()}' holds no complete {self.display_name} copy "
            f"(missing: {shown}) and data.download=false. Set `data.download=true` to fetch it (needs "
            f"internet), or point `data.root=` at a folder containing {self.layout_hint}."
            + self.missing_files_hint(missing)
        )

    def read_error(self, error: Exception) -> DlxError:
        reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip()).rstrip(":.")
        reason = (reason[:300] + "...") if len(reason) > 300 else reason or type(error).__name__
        if self.download:
            return DlxError(
                f"Could not get {self.display_name} into data.root '{self.root.absolute()}': {reason}. "
                f"data.download=true fetches files that are missing{self.download_condition} from the "
                f"internet; on a machine without it, copy {self.layout_hint} under data.root and set "
                "`data.download=false`, or point `data.root=` at a folder that already holds them."
            )
        return DlxError(
            f"Could not read {self.display_name} from data.root '{self.root.absolute()}': {reason}. The "
            f"files there look damaged or are not {self.display_name}; delete them and set "
            "`data.download=true` to fetch fresh copies, or point `data.root=` at a good copy."
        )

    # -- batches ----------------------------------------------------------------------------------
    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.device not in self._statistics:
            mean, std = (
                torch.tensor(values, device=inputs.device).view(1, -1, 1, 1)
                for values in (self.mean, self.std)
            )
            self._statistics[inputs.device] = mean, std
        mean, std = self._statistics[inputs.device]
        return (inputs.float() / PIXEL_MAX - mean) / std

    def train_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        if not self.augment:
            return None
        # Padding is black in pixel space, i.e. -mean/std once normalised, as with the usual PIL pipeline.
        black = [-mean / std for mean, std in zip(self.mean, self.std, strict=True)]
        builders: dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]] = {
            "random_crop": lambda: RandomCrop(self.crop_padding, self.crop_padding_mode, fill=black),
            "horizontal_flip": lambda: random_horizontal_flip,
            "rotation": lambda: self._per_sample_rotation(black),
        }
        return BatchAugmentations([builders[name]() for name in self.augment])

    def _per_sample_rotation(self, fill: list[float]) -> PerSampleTransform:
        from torchvision.transforms import v2

        return PerSampleTransform(v2.RandomRotation(self.rotation_degrees, fill=fill))

    def metadata(self) -> DataMetadata:
        self.setup()
        return DataMetadata(
            input_shape=list(self.input_shape),
            num_outputs=len(self.class_names),
            num_classes=len(self.class_names),
            class_names=list(self.class_names),
            mean=list(self.mean),
            std=list(self.std),
            # A raw 0..255 image becomes a model input as (pixels * scale - mean) / std.
            extra={"scale": 1.0 / PIXEL_MAX},
        )


class MNISTData(TorchvisionImageData):
    """70,000 grey 28x28 handwritten digits (60,000 official train, 10,000 test), 10 classes."""

    display_name = "MNIST"
    input_shape = [1, 28, 28]
    standard_mean = (0.1307,)
    standard_std = (0.3081,)
    layout_hint = "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte"
    raw_files = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )

    def torchvision_class(self) -> Any:
        from torchvision import datasets

        return datasets.MNIST

    def expected_files(self) -> list[Path]:
        # torchvision reads the unpacked files and, without download, only checks that they exist.
        return [self.root / self.display_name / "raw" / name for name in self.raw_files]

    def missing_files_hint(self, missing: list[Path]) -> str:
        archives = [path.with_name(path.name + ".gz") for path in missing]
        if not all(archive.is_file() for archive in archives):
            return ""
        return (
            f" The .gz archives are there but not unpacked: run `gunzip -k *.gz` in {missing[0].parent}, or "
            "set `data.download=true` (torchvision unpacks archives whose checksums match, without "
            "downloading)."
        )

    def class_names_from(self, dataset: Any) -> list[str]:
        return [str(digit) for digit in range(10)]

    def read_official_splits(self) -> OfficialSplits:
        dataset_class = self.torchvision_class()
        train = dataset_class(str(self.root), train=True, download=self.download)
        test = dataset_class(str(self.root), train=False, download=self.download)
        return (
            train.data.unsqueeze(1),
            train.targets.long(),
            test.data.unsqueeze(1),
            test.targets.long(),
            self.class_names_from(train),
        )


class FashionMNISTData(MNISTData):
    """70,000 grey 28x28 pictures of clothing (Zalando's Fashion-MNIST), 10 classes."""

    display_name = "FashionMNIST"
    standard_mean = (0.2860,)
    standard_std = (0.3530,)
    layout_hint = "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte"

    def torchvision_class(self) -> Any:
        from torchvision import datasets

        return datasets.FashionMNIST

    def class_names_from(self, dataset: Any) -> list[str]:
        return list(dataset.classes)


class CIFAR10Data(TorchvisionImageData):
    """60,000 colour 32x32 photos in 10 classes (50,000 official train, 10,000 test).

    With ``download=true`` torchvision checks every file against the official MD5 and downloads the archive
    when one is missing or differs; with ``download=false`` the files are used as they are (only their
    presence is checked, as torchvision does for MNIST), so a local or hand-made copy loads offline.
    """

    display_name = "CIFAR-10"
    input_shape = [3, 32, 32]
    standard_mean = (0.4914, 0.4822, 0.4465)
    standard_std = (0.2470, 0.2435, 0.2616)
    default_augment = ("random_crop", "horizontal_flip")
    layout_hint = "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}"
    download_condition = " or differ from the official checksums"
    batch_files = tuple(f"data_batch_{index}" for index in range(1, 6)) + ("test_batch", "batches.meta")

    def expected_files(self) -> list[Path]:
        return [self.root / "cifar-10-batches-py" / name for name in self.batch_files]

    def read_official_splits(self) -> OfficialSplits:
        dataset_class = cifar10_class(verify_checksums=self.download)
        train = dataset_class(str(self.root), train=True, download=self.download)
        test = dataset_class(str(self.root), train=False, download=self.download)
        return (*images_and_labels(train), *images_and_labels(test), list(train.classes))


def images_and_labels(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's CIFAR arrays (N, H, W, C) as a uint8 (N, C, H, W) tensor plus int64 labels."""
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(dataset.targets, dtype=torch.long)


def cifar10_class(verify_checksums: bool) -> Any:
    """torchvision's CIFAR10, or a variant that only checks that its files exist (MD5 set to None)."""
    from torchvision import datasets

    if verify_checksums:
        return datasets.CIFAR10
    files_checked_by_presence_only = {
        "train_list": [[name, None] for name, _ in datasets.CIFAR10.train_list],
        "test_list": [[name, None] for name, _ in datasets.CIFAR10.test_list],
        "meta": {**datasets.CIFAR10.meta, "md5": None},
    }
    return type("LocalCIFAR10", (datasets.CIFAR10,), files_checked_by_presence_only)
