import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from dlx.data.vision import CIFAR10Data, FashionMNISTData, MNISTData
from dlx.errors import DlxError
from tests.data.checks import assert_loader_deterministic_and_resumable
from tests.datasets_on_disk import CIFAR10_CLASSES, write_cifar10_pickles, write_mnist_idx


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test on any attempt to connect or to download."""

    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to reach the network")

    import torchvision.datasets.cifar
    import torchvision.datasets.mnist

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", refuse)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", refuse)


@pytest.mark.parametrize("download", [False, True])
def test_mnist_loads_local_files_without_network(tmp_path, no_network, download):
    written = write_mnist_idx(tmp_path, n_train=60, n_test=20)
    module = MNISTData(root=str(tmp_path), download=download, val_size=12, batch_size=16).setup()

    train_images, train_labels = module.splits["train"]
    assert train_images.dtype == torch.uint8 and train_images.shape == (48, 1, 28, 28)
    assert train_labels.dtype == torch.int64 and len(module.splits["val"][0]) == 12
    test_images, test_labels = module.splits["test"]
    assert np.array_equal(test_images[:, 0].numpy(), written["test"][0])
    assert np.array_equal(test_labels.numpy(), written["test"][1])

    inputs, targets = next(iter(module.loader("test")))
    assert inputs.dtype == torch.float32 and inputs.shape == (16, 1, 28, 28) and targets.shape == (16,)
    expected = (test_images[:16].float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(inputs, expected)

    metadata = module.metadata()
    assert metadata.input_shape == [1, 28, 28] and metadata.num_outputs == 10
    assert metadata.class_names == [str(digit) for digit in range(10)]
    assert metadata.mean == [0.1307] and metadata.std == [0.3081]


def test_mnist_val_split_is_seeded_and_disjoint_from_train(tmp_path):
    write_mnist_idx(tmp_path, n_train=60, n_test=10)
    module = MNISTData(root=str(tmp_path), download=False, val_size=15).setup()
    train_rows = {image.numpy().tobytes() for image in module.splits["train"][0]}
    assert not any(image.numpy().tobytes() in train_rows for image in module.splits["val"][0])
    same = MNISTData(root=str(tmp_path), download=False, val_size=15, seed=9).setup()
    other = MNISTData(root=str(tmp_path), download=False, val_size=15, split_seed=1).setup()
    assert torch.equal(module.splits["val"][0], same.splits["val"][0])
    assert not torch.equal(module.splits["val"][0], other.splits["val"][0])
    loading_again = MNISTData(root=str(tmp_path), download=False, val_size=15, batch_size=8)
    assert_loader_deterministic_and_resumable(loading_again)


def test_fashion_mnist_reads_its_own_folder_and_class_names(tmp_path, no_network):
    write_mnist_idx(tmp_path, n_train=30, n_test=10, kind="FashionMNIST")
    module = FashionMNISTData(root=str(tmp_path), download=True, val_size=5)
    metadata = module.metadata()
    assert metadata.class_names[0] == "T-shirt/top" and len(metadata.class_names) == 10
    assert metadata.mean == [0.2860]
    assert len(module.splits["train"][0]) == 25


def test_missing_mnist_files_name_the_folder(tmp_path):
    with pytest.raises(DlxError) as error:
        MNISTData(root=str(tmp_path / "empty"), download=False).setup()
    message = str(error.value)
    assert str(tmp_path / "empty") in message and "MNIST/raw/" in message and "data.download=true" in message


def test_packed_mnist_archives_get_a_hint(tmp_path):
    write_mnist_idx(tmp_path, n_train=10, n_test=10)
    for path in (tmp_path / "MNIST" / "raw").glob("*-ubyte"):
        path.unlink()
    with pytest.raises(DlxError, match="gunzip"):
        MNISTData(root=str(tmp_path), download=False).setup()


def test_cifar10_loads_local_pickles_as_uint8(tmp_path):
    written = write_cifar10_pickles(tmp_path, n_per_batch=8, n_test=6)
    module = CIFAR10Data(root=str(tmp_path), download=False, val_size=10, batch_size=8, augment=[]).setup()

    train_images, _ = module.splits["train"]
    assert train_images.dtype == torch.uint8 and train_images.shape == (30, 3, 32, 32)
    test_images, test_labels = module.splits["test"]
    assert np.array_equal(test_images.numpy(), written["test"][0])
    assert np.array_equal(test_labels.numpy(), written["test"][1])

    inputs, _ = next(iter(module.loader("test")))
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    assert inputs.dtype == torch.float32 and torch.allclose(inputs, (test_images.float() / 255 - mean) / std)

    metadata = module.metadata()
    assert metadata.input_shape == [3, 32, 32] and metadata.class_names == CIFAR10_CLASSES
    assert metadata.num_outputs == metadata.num_classes == 10


def test_cifar10_augmented_batches_resume_exactly(tmp_path):
    write_cifar10_pickles(tmp_path, n_per_batch=8, n_test=4)
    module = CIFAR10Data(root=str(tmp_path), download=False, val_size=0, batch_size=8, seed=4)
    assert module.augment == ["random_crop", "horizontal_flip"]
    assert_loader_deterministic_and_resumable(module, epoch=2, start_batch=3)


def crop_and_flip_that_made(
    augmented: torch.Tensor, original: torch.Tensor, padding: int, fill: torch.Tensor
):
    """The (top, left, flipped) that turn ``original``, padded with ``fill``, into ``augmented``."""
    size = original.shape[-1]
    padded = fill.view(3, 1, 1).expand(3, size + 2 * padding, size + 2 * padding).clone()
    padded[:, padding : padding + size, padding : padding + size] = original
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[:, top : top + size, left : left + size]
            for flipped, candidate in ((False, crop), (True, crop.flip(-1))):
                if torch.allclose(candidate, augmented, atol=1e-6):
                    return top, left, flipped
    return None


def test_cifar10_default_augmentation_crops_over_black_and_flips_each_image_on_its_own(tmp_path):
    write_cifar10_pickles(tmp_path, n_per_batch=4, n_test=2)
    options = {"root": str(tmp_path), "download": False, "val_size": 0, "batch_size": 20, "seed": 4}
    augmented_inputs, _ = next(iter(CIFAR10Data(**options).loader("train")))
    plain = CIFAR10Data(**options, augment=[])
    plain_inputs, _ = next(iter(plain.loader("train")))
    black = plain.prepare(torch.zeros(1, 3, 1, 1, dtype=torch.uint8)).view(3)

    pairs = zip(augmented_inputs, plain_inputs, strict=True)
    draws = [crop_and_flip_that_made(augmented, original, 4, black) for augmented, original in pairs]
    assert None not in draws
    assert len(set(draws)) > 1  # one random draw per image, not one per batch


def test_cifar10_reflect_crop_translates_training_images_over_their_mirrored_border(tmp_path):
    write_cifar10_pickles(tmp_path, n_per_batch=8, n_test=2)
    options = {"root": str(tmp_path), "download": False, "val_size": 0, "batch_size": 40, "seed": 4}
    augmented = CIFAR10Data(**options, augment=["random_crop"], crop_padding=2, crop_padding_mode="reflect")
    augmented_inputs, _ = next(iter(augmented.loader("train")))
    plain_inputs, _ = next(iter(CIFAR10Data(**options, augment=[]).loader("train")))
    assert augmented_inputs.shape == plain_inputs.shape and augmented_inputs.dtype == torch.float32

    padded = torch.nn.functional.pad(plain_inputs, (2, 2, 2, 2), mode="reflect")
    windows = [
        next(
            (top, left)
            for top in range(5)
            for left in range(5)
            if torch.equal(augmented_image, padded_image[:, top : top + 32, left : left + 32])
        )
        for augmented_image, padded_image in zip(augmented_inputs, padded, strict=True)
    ]
    assert len(set(windows)) > 5 and any(window != (2, 2) for window in windows)


def test_cifar10_kept_on_another_device_is_normalised_and_augmented_there(tmp_path):
    write_cifar10_pickles(tmp_path, n_per_batch=8, n_test=2)
    module = CIFAR10Data(
        root=str(tmp_path),
        download=False,
        val_size=8,
        batch_size=16,
        crop_padding=2,
        crop_padding_mode="reflect",
    ).setup()
    # The meta device stands in for a GPU, where keep_on_device puts the splits when CUDA is there.
    module.splits = {name: (x.to("meta"), y.to("meta")) for name, (x, y) in module.splits.items()}
    for split in ("train", "val"):
        inputs, targets = next(iter(module.loader(split)))
        assert inputs.device.type == targets.device.type == "meta"
        assert inputs.dtype == torch.float32 and inputs.shape == (len(targets), 3, 32, 32)


def test_cifar10_download_true_verifies_checksums_and_explains_offline_failure(tmp_path, monkeypatch):
    """download=true runs torchvision's MD5 check; hand-made files fail it, so it tries to download."""
    from urllib.error import URLError

    import torchvision.datasets.cifar

    write_cifar10_pickles(tmp_path, n_per_batch=2, n_test=2)
    attempts = []

    def offline(url, *args, **kwargs):
        attempts.append(url)
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(DlxError) as error:
        CIFAR10Data(root=str(tmp_path), download=True, val_size=0).setup()
    assert attempts == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert "official checksums" in str(error.value) and "data.download=false" in str(error.value)


@pytest.mark.parametrize("data_class", [MNISTData, CIFAR10Data])
def test_a_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch, data_class):
    """torchvision makes data.root and its own folders before it downloads; a failure takes back only
    the folders that were not there and are still empty."""
    from urllib.error import URLError

    import torchvision.datasets.cifar
    import torchvision.datasets.mnist

    def offline(url, download_root, *args, **kwargs):
        Path(download_root).mkdir(parents=True, exist_ok=True)
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    for root in (tmp_path / "path" / "to" / "data", tmp_path / "mine"):
        with pytest.raises(DlxError, match="Could not get"):
            data_class(root=str(root), download=True).setup()
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["mine", "notes.txt"]


def test_missing_cifar10_files_name_the_folder(tmp_path):
    with pytest.raises(DlxError) as error:
        CIFAR10Data(root=str(tmp_path), download=False).setup()
    assert str(tmp_path) in str(error.value) and "cifar-10-batches-py/data_batch_1" in str(error.value)


def test_vision_arguments_are_checked_with_suggestions():
    with pytest.raises(DlxError, match="Did you mean 'horizontal_flip'"):
        CIFAR10Data(augment=["horizontal_flipp"])
    with pytest.raises(DlxError, match="data.mean has 3 values"):
        MNISTData(mean=[0.5, 0.5, 0.5])
    with pytest.raises(DlxError, match=r"Did you mean 'reflect'\?"):
        CIFAR10Data(crop_padding_mode="reflekt")
    with pytest.raises(DlxError, match="reflect padding must be smaller than the image"):
        MNISTData(crop_padding=28, crop_padding_mode="reflect")
    assert MNISTData(normalize=False).prepare(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8)).eq(1).all()
