import pytest
import torch

from dlx.build import build_data
from dlx.config.compose import compose_config
from dlx.data.char_lm import CharLMData
from dlx.errors import DlxError
from tests.data.checks import assert_loader_deterministic_and_resumable
from tests.text_on_disk import write_char_text


@pytest.fixture
def text_path(tmp_path):
    return write_char_text(tmp_path / "input.txt")


def test_vocabulary_is_the_sorted_characters_of_the_whole_file_and_val_is_the_last_tenth(text_path):
    text = text_path.read_text(encoding="utf-8")
    data = CharLMData(path=str(text_path), block_size=8).setup()
    assert data.vocabulary == sorted(set(text)) and "é" in data.vocabulary  # é is only in the val part
    n_train = int(len(text) * 0.9)
    assert data.decode(data.tokens["train"]) == text[:n_train]
    assert data.decode(data.tokens["val"]) == text[n_train:]
    assert data.tokens["train"].dtype == torch.uint8  # the whole text as one small tensor
    metadata = data.metadata()
    assert metadata.vocab_size == metadata.num_outputs == len(set(text)) and metadata.num_classes is None
    assert metadata.input_shape == [8] and metadata.extra["dynamic_axes"] == {"sequence": 1}


def test_train_batches_are_random_windows_with_targets_shifted_by_one(text_path):
    text = text_path.read_text(encoding="utf-8")
    data = CharLMData(path=str(text_path), block_size=16, batch_size=5).setup()
    batches = list(data.loader("train"))
    train_text = text[: int(len(text) * 0.9)]
    assert len(batches) == len(train_text) // (16 * 5)
    for x, y in batches:
        assert x.shape == y.shape == (5, 16) and x.dtype == y.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        for row_x, row_y in zip(x, y, strict=True):
            window = data.decode(row_x) + data.decode(row_y)[-1]
            assert window in train_text
    starts = {data.decode(x[0]) for x, _ in batches}
    assert len(starts) > 1  # offsets are drawn, not fixed


def test_batches_depend_only_on_seed_epoch_and_batch_and_resume_from_start_batch(text_path):
    data = CharLMData(path=str(text_path), block_size=8, batch_size=4, batches_per_epoch=6, seed=3).setup()
    assert len(data.loader("train")) == 6
    assert_loader_deterministic_and_resumable(data, epoch=2, start_batch=4)
    other_seed = CharLMData(path=str(text_path), block_size=8, batch_size=4, batches_per_epoch=6, seed=4)
    first, other = next(iter(data.loader("train"))), next(iter(other_seed.loader("train")))
    assert not torch.equal(first[0], other[0])


def test_validation_walks_every_block_of_the_split_in_order(text_path, caplog):
    caplog.set_level("INFO", logger="dlx")
    data = CharLMData(path=str(text_path), block_size=8, eval_batch_size=3).setup()
    val = data.tokens["val"]
    inputs = torch.cat([x for x, _ in data.loader("val")])
    targets = torch.cat([y for _, y in data.loader("val")])
    covered = inputs.numel()
    assert covered == len(inputs) * 8 and len(val) - 8 <= covered < len(val)
    assert torch.equal(inputs.flatten(), val[:covered].long())
    assert torch.equal(targets.flatten(), val[1 : covered + 1].long())
    assert len(data.loader("val")) == -(-len(inputs) // 3)
    test_inputs = torch.cat([x for x, _ in data.loader("test")])
    assert torch.equal(test_inputs, inputs)  # val also serves as test, and the user is told so
    assert "'test' is the val split, the last 10% of" in caplog.text


def test_unshuffled_train_loader_gives_the_same_first_batches_for_overfitting(text_path):
    data = CharLMData(path=str(text_path), block_size=8, batch_size=4).setup()
    first = [x for x, _ in list(data.loader("train", shuffle=False))[:2]]
    again = [x for x, _ in list(data.loader("train", epoch=5, shuffle=False))[:2]]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert data.decode(first[0][0]) == data.decode(data.tokens["train"][:8])
    x, y = data.example_batch("val", 2)
    assert x.shape == y.shape == (2, 8) and x.dtype == y.dtype == torch.int64


def test_vocabulary_from_the_checkpoint_state_encodes_and_decodes_without_the_file(tmp_path, text_path):
    trained = CharLMData(path=str(text_path)).setup()
    state = trained.state_dict()
    restored = CharLMData(path=str(tmp_path / "gone.txt"))
    restored.load_state_dict(state)
    assert restored.encode("ROMEO: é") == trained.encode("ROMEO: é")
    assert restored.decode(restored.encode("But soft")) == "But soft"
    assert restored.metadata().vocab_size == len(trained.vocabulary)
    with pytest.raises(DlxError, match=r"characters the model never saw in training: 'Z', 'q'"):
        restored.encode("Zoq")


def test_a_resumed_run_keeps_the_saved_vocabulary_and_refuses_a_text_with_new_characters(text_path):
    state = CharLMData(path=str(text_path)).setup().state_dict()
    cfg = compose_config(["data=char_lm", f"data.path={text_path}", "data.block_size=16"])
    data = build_data(cfg, state)
    assert data.vocabulary == state["vocabulary"]
    assert cfg.data.vocab_size == cfg.data.num_outputs == len(state["vocabulary"])
    assert cfg.data.input_shape == [16] and cfg.data.num_classes is None
    with open(text_path, "a", encoding="utf-8") as handle:
        handle.write("Zounds, Q!\n")
    restored = CharLMData(path=str(text_path))
    restored.load_state_dict(state)
    with pytest.raises(
        DlxError, match="characters the checkpoint's vocabulary lacks: 'Q', 'Z'. The model was"
    ):
        restored.setup()


def test_empty_missing_and_non_utf8_text_is_explained(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DlxError, match=r"empty.txt \(data.path\) is empty"):
        CharLMData(path=str(tmp_path / "empty.txt")).setup()
    with pytest.raises(DlxError, match="data.path '.*missing.txt' is not a file"):
        CharLMData(path=str(tmp_path / "missing.txt")).setup()
    (tmp_path / "latin.txt").write_bytes("Ay me! Roméo\n".encode("latin-1") * 20)
    with pytest.raises(DlxError, match="is not utf-8 text: byte 0xe9 on line 1"):
        CharLMData(path=str(tmp_path / "latin.txt")).setup()


def test_a_block_size_longer_than_a_split_says_how_long_the_data_is(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("abcdefghij" * 10)  # 100 characters: 90 train, 10 val
    with pytest.raises(DlxError) as error:
        CharLMData(path=str(path), block_size=10).setup()
    message = str(error.value)
    assert "data.block_size=10 is too long for short.txt: it has 100 characters" in message
    assert "its val split (the last 10%) has 10" in message and "`data.block_size=9`" in message
    with pytest.raises(DlxError, match=r"its train split \(the first 40%\) has 40, .* `data.block_size=39`"):
        CharLMData(path=str(path), block_size=50, val_fraction=0.6).setup()
    assert len(list(CharLMData(path=str(path), block_size=9).setup().loader("val"))) == 1
    with pytest.raises(DlxError, match="data.block_size must be at least 1"):
        CharLMData(path=str(path), block_size=0)


def test_a_text_with_more_than_256_distinct_characters_is_stored_wider(tmp_path):
    alphabet = "".join(chr(0x4E00 + i) for i in range(300))  # 300 CJK characters
    path = tmp_path / "wide.txt"
    path.write_text(alphabet * 3, encoding="utf-8")
    data = CharLMData(path=str(path), block_size=8).setup()
    assert data.tokens["train"].dtype == torch.int32 and len(data.vocabulary) == 300
    assert data.decode(data.tokens["val"]) == (alphabet * 3)[int(900 * 0.9) :]


def test_processes_share_each_training_batch(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    single = CharLMData(path=str(path), block_size=8, batch_size=4).setup()
    ((x_all, _),) = list(single.loader("train", epoch=3, start_batch=2))[:1]
    shares = []
    for rank in range(2):
        data = CharLMData(path=str(path), block_size=8, batch_size=4).setup()
        data.shard(rank, 2)
        ((x, _),) = list(data.loader("train", epoch=3, start_batch=2))[:1]
        shares.append(x)
    assert torch.equal(torch.cat([shares[0], shares[1]]).sort(dim=0).values, x_all.sort(dim=0).values)
    assert torch.equal(shares[0], x_all[0::2]) and torch.equal(shares[1], x_all[1::2])
