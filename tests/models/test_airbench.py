"""model=airbench (dlx/models/airbench.py) and the recipe built on it, recipes/cifar10_fast.yaml."""

import json

import pytest
import torch
from torch.nn import functional as F

from dlx.errors import DlxError
from dlx.models.airbench import AirbenchNet
from tests.datasets_on_disk import write_cifar10_pickles
from tests.helpers import only_run_folder, train_run

SMALL = {"widths": [8, 16, 16]}


def smooth_images(count: int, seed: int = 0) -> torch.Tensor:
    """Images whose neighbouring pixels and channels are strongly correlated, as in photos."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(count, 1, 8, 8, generator=generator)
    images = F.interpolate(coarse, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    return images + 0.1 * torch.randn(count, 3, 32, 32, generator=generator)


def test_the_first_training_batch_whitens_the_first_convolution_and_freezes_it():
    torch.manual_seed(0)
    model = AirbenchNet([3, 32, 32], 10, **SMALL).train()
    images = smooth_images(64)
    assert not model.whiten.weight.requires_grad and not model.whitened

    model(images)
    weight = model.whiten.weight.detach().clone()
    half = len(weight) // 2
    assert torch.equal(weight[half:], -weight[:half])  # each filter and its opposite
    responses = F.conv2d(images, weight[:half]).permute(0, 2, 3, 1).reshape(-1, half)
    covariance = responses.T @ responses / len(responses)
    # Unit variance along every direction the patches vary in; the tiny-noise ones are damped by epsilon.
    assert torch.allclose(covariance.diagonal()[:4], torch.ones(4), atol=0.05)
    assert (covariance - torch.diag(covariance.diagonal())).abs().max() < 0.05
    assert model.whitened

    model(smooth_images(64, seed=1))
    assert torch.equal(model.whiten.weight, weight), "whitened once, then frozen"


def test_a_restored_model_is_not_whitened_again():
    torch.manual_seed(0)
    trained = AirbenchNet([3, 32, 32], 10, **SMALL).train()
    trained(smooth_images(16))
    restored = AirbenchNet([3, 32, 32], 10, **SMALL)
    restored.load_state_dict(trained.state_dict())
    restored.train()(smooth_images(16, seed=3))
    assert torch.equal(restored.whiten.weight, trained.whiten.weight)


def test_without_whitening_the_first_convolution_trains():
    model = AirbenchNet([3, 32, 32], 10, whiten=False, **SMALL).train()
    before = model.whiten.weight.detach().clone()
    model(smooth_images(8)).sum().backward()
    assert torch.equal(model.whiten.weight, before) and model.whiten.weight.grad is not None


def test_test_time_augmentation_averages_the_mirrored_and_shifted_views():
    torch.manual_seed(0)
    images = torch.randn(5, 3, 32, 32)
    plain = AirbenchNet([3, 32, 32], 10, test_time_augmentation="none", **SMALL).eval()
    with torch.no_grad():
        logits = plain(images)
        assert torch.equal(logits, plain.logits(images))

        plain.test_time_augmentation = "flip"
        mirrored = plain(images)
        torch.testing.assert_close(mirrored, plain(images.flip(-1)))  # the same for an image and its mirror
        torch.testing.assert_close(mirrored, (logits + plain.logits(images.flip(-1))) / 2)

        plain.test_time_augmentation = "flip_translate"
        padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
        shifted = [padded[..., :32, :32], padded[..., 2:, 2:]]
        both = [(plain.logits(view) + plain.logits(view.flip(-1))) / 2 for view in shifted]
        expected = 0.5 * mirrored + 0.25 * (both[0] + both[1])
        torch.testing.assert_close(plain(images), expected)
    assert plain.train()(images).shape == (5, 10)  # training sees the images as they come


def test_bf16_autocast_forward_and_backward_on_cpu():
    torch.manual_seed(0)
    model = AirbenchNet([3, 32, 32], 10, **SMALL).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(smooth_images(8))
    assert outputs.dtype == torch.bfloat16 and torch.isfinite(outputs).all()
    outputs.float().logsumexp(1).mean().backward()
    assert model.whiten.weight.dtype == torch.float32 and model.head.weight.grad is not None


def test_airbench_refuses_images_too_small_for_its_blocks():
    with pytest.raises(DlxError, match=r"at least 9x9 pixels.*`model.widths=\[64,256\]`"):
        AirbenchNet([1, 8, 8], 10)
    AirbenchNet([1, 8, 8], 10, widths=[4, 8])  # two blocks fit
    with pytest.raises(DlxError, match=r"Did you mean 'flip'\?"):
        AirbenchNet([3, 32, 32], 10, test_time_augmentation="flipp")


def test_the_fast_recipe_trains_on_cifar10_files_and_its_loss_falls(tmp_path):
    write_cifar10_pickles(tmp_path / "data", n_per_batch=32, n_test=16, learnable=True)
    summary = train_run(
        "recipe=cifar10_fast",
        "logger=none",
        "trainer.progress=none",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "data.val_size=32",
        "data.batch_size=16",
        "data.eval_batch_size=16",
        "model.widths=[8,16,16]",
        "trainer.max_epochs=3",
        "trainer.val_every_n_epochs=1",
        "trainer.log_every_n_steps=1",
        "optimizer.lr=0.2",  # the recipe's 1.5 is for batches of 1024
        fast=False,
    )
    assert summary["stop_reason"] == "max_epochs" and summary["steps"] == 3 * (128 // 16)
    records = [json.loads(line) for line in (only_run_folder() / "metrics.jsonl").read_text().splitlines()]
    losses = [record["train/loss"] for record in records if "train/loss" in record]
    assert sum(losses[-3:]) < sum(losses[:3])
    assert summary["best_metrics"]["val/acc"] > 0.2  # 10 classes: chance is 0.1

    checkpoint = torch.load(only_run_folder() / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["model"]["whitened"]
    groups = checkpoint["optimization"]["optimizers"][0]["param_groups"]
    assert {group["lr_multiplier"] for group in groups} == {1.0, 64.0}
    assert "bf16" in checkpoint["config"] and "channels_last: true" in checkpoint["config"]
