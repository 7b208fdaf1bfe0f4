"""`dlx generate`: the sampling rule, reproducibility, streaming, and the refusals."""

import io
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dlx.cli import app
from dlx.errors import DlxError
from dlx.generate import generate, sample_next_token
from tests.helpers import train_run
from tests.text_on_disk import write_char_text


@pytest.fixture(scope="module")
def language_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.ckpt of a tiny character GPT; its training text is deleted, as on a machine that only has the
    checkpoint."""
    folder = tmp_path_factory.mktemp("char-gpt")
    text = write_char_text(folder / "play.txt")
    train_run(
        "model=gpt",
        "task=language_modeling",
        "data=char_lm",
        f"data.path={text}",
        "data.block_size=16",
        "data.batches_per_epoch=5",
        "model.n_layer=1",
        "model.n_head=2",
        "model.n_embd=16",
        "optimizer.lr=0.01",
        f"output_dir={folder / 'outputs'}",
    )
    text.unlink()
    return next(folder.glob("outputs/*/*/checkpoints/best.ckpt"))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("digits")
    train_run("trainer.max_epochs=1", "model.hidden_sizes=[8]", f"output_dir={folder}")
    return next(folder.glob("*/*/checkpoints/best.ckpt"))


def draws(logits: torch.Tensor, count: int = 2000, **options) -> set[int]:
    generator = torch.Generator().manual_seed(0)
    batch = logits.expand(count, -1)
    return set(sample_next_token(batch, generator=generator, **options).flatten().tolist())


def test_top_k_1_is_greedy_at_any_temperature():
    logits = torch.randn(8, 30, generator=torch.Generator().manual_seed(1))
    for temperature in (0.1, 1.0, 5.0):
        chosen = sample_next_token(logits, temperature=temperature, top_k=1)
        assert chosen.shape == (8, 1) and torch.equal(chosen.squeeze(1), logits.argmax(1))


def test_only_the_k_most_likely_tokens_are_ever_drawn():
    logits = torch.randn(1, 50, generator=torch.Generator().manual_seed(2))
    top3 = set(logits.topk(3).indices.flatten().tolist())
    assert draws(logits, top_k=3, temperature=2.0) == top3
    assert len(draws(logits, temperature=2.0)) > 10  # without top-k, others appear


def test_top_p_keeps_the_smallest_set_of_likely_tokens_that_reaches_p():
    logits = torch.log(torch.tensor([[0.125, 0.5, 0.125, 0.25]]))
    assert draws(logits, top_p=0.4) == {1}
    assert draws(logits, top_p=0.5) == {1}
    assert draws(logits, top_p=0.75) == {1, 3}
    beyond = draws(logits, top_p=0.76)  # 0.75 is not enough: one of the two tied at 0.125 joins
    assert len(beyond) == 3 and {1, 3} < beyond
    assert draws(logits, top_p=1.0) == {0, 1, 2, 3}


def test_the_same_seed_draws_the_same_text_and_the_text_is_streamed(language_model):
    first, second, other = io.StringIO(), io.StringIO(), io.StringIO()
    text = generate(language_model, "ROMEO:", 40, top_p=0.95, seed=1, device="cpu", out=first)
    assert generate(language_model, "ROMEO:", 40, top_p=0.95, seed=1, device="cpu", out=second) == text
    assert generate(language_model, "ROMEO:", 40, top_p=0.95, seed=2, device="cpu", out=other) != text
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 40
    assert first.getvalue() == text + "\n"


def test_a_prompt_longer_than_the_context_is_cropped(language_model):
    prompt = "ROMEO:\nBut soft, what light through yonder"  # 42 characters, the context is 16
    assert len(generate(language_model, prompt, 5, seed=0, out=io.StringIO())) == len(prompt) + 5


@pytest.mark.parametrize(
    "options, message",
    [
        (["--top-p", "0"], r"--top-p must be in \(0, 1\], got 0.0"),
        (["--top-p", "1.5"], r"--top-p must be in \(0, 1\]"),
        (["--temperature", "0"], "--temperature must be above 0"),
        (["--top-k", "0"], "--top-k must be at least 1"),
        (["--prompt", "ROMEO: zzz"], "--prompt 'ROMEO: zzz'.*characters the model never saw.*'z'"),
        (["--device", "gpu7"], "--device 'gpu7' is not a device"),
    ],
)
def test_bad_options_exit_2_with_the_fix(language_model, options, message):
    result = CliRunner().invoke(app, ["generate", str(language_model), *options])
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.output.split()))


def test_a_classifier_checkpoint_is_refused(classifier):
    with pytest.raises(DlxError, match="not a language model: it was trained with task=classification"):
        generate(classifier, out=io.StringIO())
    result = CliRunner().invoke(app, ["generate", str(classifier)])
    assert result.exit_code == 2 and "task=language_modeling" in result.output


def test_the_command_prints_the_prompt_and_its_continuation(language_model):
    result = CliRunner().invoke(
        app, ["generate", str(language_model), "--prompt", "JULIET:", "--max-new-tokens", "30", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "JULIET:" in result.output
    help_text = CliRunner().invoke(app, ["generate", "--help"]).output
    assert "Examples" in help_text and "dlx generate" in help_text


def test_predict_on_a_language_model_points_to_generate(language_model):
    result = CliRunner().invoke(app, ["predict", str(language_model), "--limit", "1"])
    assert result.exit_code == 2, result.output
    assert "is a language model" in result.output and "dlx generate" in result.output


@pytest.mark.parametrize(
    "task, expected",
    [
        ({"name": "language_modeling"}, True),
        # a user's option file with only `_target_` is named after the class by validation
        (
            {"_target_": "dlx.tasks.language_modeling.LanguageModelingTask", "name": "languagemodelingtask"},
            True,
        ),
        ({"name": "classification"}, False),
        ({"_target_": "dlx.tasks.regression.RegressionTask"}, False),
    ],
)
def test_a_language_model_is_recognised_by_its_class(task, expected):
    from omegaconf import OmegaConf

    from dlx.generate import is_language_model

    assert is_language_model(OmegaConf.create({"task": task})) is expected


def test_an_exported_file_is_not_taken_for_a_broken_checkpoint(tmp_path):
    from dlx.engine.checkpoint import load_checkpoint
    from dlx.errors import DlxError

    (tmp_path / "best.onnx").write_bytes(b"onnx bytes")
    with pytest.raises(DlxError, match="is an exported model .* Give the checkpoint it was exported from"):
        load_checkpoint(tmp_path / "best.onnx")
