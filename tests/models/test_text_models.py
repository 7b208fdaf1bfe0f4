"""The models of token ids: rnn, transformer (classifiers), gpt (language model) and hf (Hugging Face)."""

import math
from pathlib import Path

import pytest
import torch

from dlx.errors import DlxError
from dlx.loggers.metrics_file import read_metrics
from dlx.models.gpt import GPT
from dlx.models.hf import HFClassifier
from dlx.models.rnn import RNNClassifier
from dlx.models.transformer import TransformerClassifier
from tests.helpers import only_run_folder, train_run
from tests.text_on_disk import write_char_text, write_sst2_folder

TINY_BERT = "{model_type:bert,hidden_size:16,num_hidden_layers:1,num_attention_heads:2,intermediate_size:32}"
TINY = {
    "rnn": ["model=rnn", "model.embedding_size=16", "model.hidden_size=16", "model.bidirectional=true"],
    "transformer": [
        "model=transformer",
        "model.d_model=16",
        "model.num_heads=2",
        "model.num_layers=1",
        "model.feedforward_size=32",
    ],
    "hf": ["model=hf", f"model.config={TINY_BERT}"],
    "gpt": ["model=gpt", "task=language_modeling", "model.n_layer=1", "model.n_head=2", "model.n_embd=16"],
}


def text_data(family: str, folder: Path) -> list[str]:
    if family == "gpt":
        path = write_char_text(folder / "play.txt")
        return ["data=char_lm", f"data.path={path}", "data.block_size=16", "data.batches_per_epoch=4"]
    return ["data=sst2", f"data.root={write_sst2_folder(folder / 'SST-2')}", "data.batch_size=16"]


def padded(tokens: list[list[int]], width: int) -> torch.Tensor:
    return torch.tensor([row + [0] * (width - len(row)) for row in tokens])


SENTENCES = [[5, 9, 2, 7], [3, 8, 8, 4, 6, 1], [7]]


@pytest.mark.parametrize("family", sorted(TINY))
def test_each_text_model_trains_and_its_loss_falls(family, tmp_path):
    summary = train_run(
        *TINY[family],
        *text_data(family, tmp_path),
        "optimizer.lr=0.01",
        "trainer.max_epochs=6",
        "trainer.log_every_n_steps=1",
    )
    losses = [r["train/loss"] for r in read_metrics(only_run_folder() / "metrics.jsonl") if "train/loss" in r]
    assert len(losses) >= 6 and all(map(math.isfinite, losses))
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), losses
    if family == "gpt":
        assert summary["best_metrics"]["val/perplexity"] == pytest.approx(
            math.exp(summary["best_metrics"]["val/loss"]), rel=1e-5
        )
    elif family != "hf":  # a BERT from scratch needs more than these few steps to beat chance
        assert summary["best_metrics"]["val/acc"] >= 0.7


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_rnn_output_for_a_sentence_does_not_change_with_more_padding(cell, pooling):
    torch.manual_seed(0)
    model = RNNClassifier(
        10, 3, cell=cell, hidden_size=8, embedding_size=8, num_layers=2, bidirectional=True, pooling=pooling
    ).eval()
    with torch.no_grad():
        short, long = model(padded(SENTENCES, 6)), model(padded(SENTENCES, 15))
        alone = torch.cat([model(torch.tensor([row])) for row in SENTENCES])
    torch.testing.assert_close(short, long)
    torch.testing.assert_close(short, alone)


def test_rnn_packed_path_and_export_path_agree(monkeypatch):
    torch.manual_seed(0)
    model = RNNClassifier(10, 3, hidden_size=8, embedding_size=8, num_layers=2, bidirectional=True).eval()
    tokens = padded(SENTENCES, 9)
    with torch.no_grad():
        packed = model(tokens)
        monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
        masked = model(tokens)
    torch.testing.assert_close(packed, masked)


def test_rnn_takes_a_text_of_padding_only():
    model = RNNClassifier(10, 2, hidden_size=8, embedding_size=8, bidirectional=True).eval()
    assert torch.isfinite(model(torch.zeros(2, 4, dtype=torch.long))).all()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_transformer_output_for_a_sentence_does_not_change_with_more_padding(positions, pooling):
    torch.manual_seed(0)
    model = TransformerClassifier(
        [16], 3, vocab_size=10, d_model=16, num_heads=2, positions=positions, pooling=pooling
    ).eval()
    with torch.no_grad():
        short, long = model(padded(SENTENCES, 6)), model(padded(SENTENCES, 16))
        alone = torch.cat([model(torch.tensor([row])) for row in SENTENCES])
        assert torch.isfinite(model(torch.zeros(2, 5, dtype=torch.long))).all()  # padding only
    torch.testing.assert_close(short, long)
    torch.testing.assert_close(short, alone)


def test_transformer_with_learned_positions_refuses_a_longer_text():
    model = TransformerClassifier([8], 2, vocab_size=10, d_model=8, num_heads=2, positions="learned")
    with pytest.raises(DlxError, match="longer than the 8 positions"):
        model(torch.ones(1, 9, dtype=torch.long))


def test_gpt_is_causal_ties_weights_and_counts_parameters_as_nanogpt():
    torch.manual_seed(0)
    model = GPT(65, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False).eval()
    assert model.lm_head.weight is model.transformer.wte.weight
    assert round(model.parameter_count() / 1e6, 2) == 0.80  # nanoGPT prints 0.80M for this baby GPT
    tokens = torch.randint(65, (2, 20))
    changed = tokens.clone()
    changed[:, 12] = (changed[:, 12] + 1) % 65
    with torch.no_grad():
        logits, changed_logits = model(tokens), model(changed)
    assert logits.shape == (2, 20, 65)
    torch.testing.assert_close(logits[:, :12], changed_logits[:, :12])
    assert not torch.allclose(logits[:, 12:], changed_logits[:, 12:])
    # nanoGPT's init: the projections into the residual stream are scaled by 1/sqrt(2 * n_layer).
    c_proj = model.transformer.h[0].mlp.c_proj.weight
    assert c_proj.std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.1)
    with pytest.raises(DlxError, match="longer than model.block_size=64"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_a_text_model_on_data_without_a_vocabulary_says_which_data_fits():
    with pytest.raises(DlxError, match="model=rnn reads token ids.*data=text_classification"):
        train_run("model=rnn")
    with pytest.raises(DlxError, match="task=language_modeling trains on next-token targets.*data=char_lm"):
        train_run("model=gpt", "task=language_modeling")


# -- Hugging Face -----------------------------------------------------------------------------------
def tiny_bert(data_vocab_size: int = 30, **overrides) -> HFClassifier:
    config = {
        "model_type": "bert",
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
    }
    return HFClassifier(num_outputs=2, vocab_size=data_vocab_size, pad_id=0, config={**config, **overrides})


def test_hf_fine_tuned_model_reloads_from_its_checkpoint_with_the_same_predictions(tmp_path):
    from dlx.evaluate import evaluate_checkpoint
    from dlx.restore import restore_run

    summary = train_run(*TINY["hf"], *text_data("hf", tmp_path), "optimizer.lr=0.01", "trainer.max_epochs=3")
    checkpoint = only_run_folder() / "checkpoints" / "best.ckpt"
    results = evaluate_checkpoint(checkpoint, [])
    for key in ("val/loss", "val/acc"):
        assert results["metrics"][key] == pytest.approx(summary["best_metrics"][key], abs=1e-6)
    first, second = restore_run(checkpoint), restore_run(checkpoint)
    tokens = first.data.splits["val"][0][:8].long()
    with torch.no_grad():
        torch.testing.assert_close(first.model(tokens), second.model(tokens))


def test_hf_padding_is_masked_out():
    torch.manual_seed(0)
    model = tiny_bert().eval()
    with torch.no_grad():
        torch.testing.assert_close(model(padded(SENTENCES, 6)), model(padded(SENTENCES, 12)))


def test_hf_loads_a_local_folder_without_network(tmp_path):
    torch.manual_seed(0)
    model = tiny_bert().eval()
    model.hf_model.save_pretrained(tmp_path / "tiny-bert")
    loaded = HFClassifier(num_outputs=2, vocab_size=30, pretrained=str(tmp_path / "tiny-bert")).eval()
    tokens = padded(SENTENCES, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens), model(tokens))


def test_hf_names_that_cannot_be_loaded_say_how_to_use_a_local_folder(tmp_path, monkeypatch):
    with pytest.raises(DlxError, match="not a model folder .*no config.json"):
        HFClassifier(num_outputs=2, pretrained=str(tmp_path / "missing"))

    def not_found(*args, **kwargs):
        raise OSError("bert-base-uncased is not a local folder and is not a valid model identifier")

    monkeypatch.setattr("transformers.AutoModelForSequenceClassification.from_pretrained", not_found)
    monkeypatch.setattr("dlx.hub.hub_reachable", lambda: False)
    with pytest.raises(DlxError, match="cannot be loaded offline.*model.pretrained=/path/to/folder"):
        HFClassifier(num_outputs=2, pretrained="bert-base-uncased")
    monkeypatch.setattr("dlx.hub.hub_reachable", lambda: True)
    with pytest.raises(DlxError, match="Could not load .* from the Hub: bert-base-uncased is not a local"):
        HFClassifier(num_outputs=2, pretrained="bert-base-uncased")
    with pytest.raises(DlxError, match="model.pretrained .* or model.config"):
        HFClassifier(num_outputs=2)
    with pytest.raises(DlxError, match="model_type"):
        HFClassifier(num_outputs=2, config={"hidden_size": 16})


def test_hf_tokenizer_with_a_larger_vocabulary_than_the_model_is_refused():
    with pytest.raises(DlxError, match="data.tokenizer="):
        tiny_bert(data_vocab_size=100, vocab_size=50)


def test_the_documented_lr_multiplier_prefixes_match_a_bert_model():
    from dlx.optim.optimizers import adamw

    multipliers = {
        "hf_model.bert.embeddings": 0.5,
        "hf_model.bert.encoder.layer.0": 0.8,
        "hf_model.classifier": 10,
    }
    optimizer = adamw(tiny_bert(), lr=1e-3, lr_multipliers=multipliers)
    assert sorted({group["lr"] for group in optimizer.param_groups}) == pytest.approx(
        [5e-4, 8e-4, 1e-3, 1e-2]
    )


# -- export ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["rnn", "transformer"])
def test_classifier_exports_to_onnx_and_runs_on_shorter_and_longer_texts(family, tmp_path, monkeypatch):
    from dlx.export.command import export_checkpoint
    from dlx.export.onnx_export import onnx_runner
    from dlx.restore import restore_run

    monkeypatch.setattr("dlx.export.parity.TIMING_BUDGET_SECONDS", 0.0)
    train_run(*TINY[family], *text_data(family, tmp_path), "trainer.max_epochs=1", "data.max_length=12")
    checkpoint = only_run_folder() / "checkpoints" / "best.ckpt"
    path = export_checkpoint("onnx", checkpoint)["path"]
    model, runner = restore_run(checkpoint).model, onnx_runner(path)
    torch.manual_seed(0)
    for length in (3, 12, 30):  # the exporter traced [2, 12]
        tokens = torch.randint(1, 20, (5, length))
        tokens[1, length // 2 :] = 0
        with torch.no_grad():
            torch.testing.assert_close(runner(tokens), model(tokens), atol=1e-4, rtol=0)


def test_the_finetune_recipe_runs_offline_from_a_local_model_folder(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from tests.text_on_disk import write_tiny_hf_tokenizer

    folder = write_tiny_hf_tokenizer(tmp_path / "tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForSequenceClassification(config).save_pretrained(str(folder))
    summary = train_run(
        "recipe=sst2_finetune",
        f"model.pretrained={folder}",
        f"data.root={write_sst2_folder(tmp_path / 'SST-2')}",
        "trainer.max_epochs=2",
        "optimizer.lr=1e-3",
    )
    assert summary["stop_reason"] == "max_epochs" and summary["best_metrics"]["val/acc"] > 0
    lrs = {
        group["lr_multiplier"]
        for group in torch.load(only_run_folder() / "checkpoints" / "last.ckpt", weights_only=False)[
            "optimization"
        ]["optimizers"][0]["param_groups"]
    }
    assert lrs == {0.5, 1.0, 10.0}
