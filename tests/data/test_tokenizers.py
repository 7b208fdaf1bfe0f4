import pytest

from dlx.data.tokenizers import HuggingFaceTokenizer, WordTokenizer, load_pretrained_tokenizer, split_words
from dlx.errors import DlxError
from dlx.hub import hub_reachable
from tests.text_on_disk import write_tiny_hf_tokenizer


def test_words_and_punctuation_are_split_and_lowercased():
    assert split_words("It's a GREAT film, isn't it?") == [
        "it's",
        "a",
        "great",
        "film",
        ",",
        "isn't",
        "it",
        "?",
    ]
    assert split_words("it 's a film that does n't work") == [
        "it",
        "'s",
        "a",
        "film",
        "that",
        "does",
        "n't",
        "work",
    ]
    assert split_words("Café OK", lowercase=False) == ["Café", "OK"]


def test_vocabulary_is_pad_unk_then_words_by_frequency_with_min_freq_and_max_size():
    texts = ["b a c", "a b", "a", "d"]
    tokenizer = WordTokenizer.build(texts)
    assert tokenizer.tokens == ["<pad>", "<unk>", "a", "b", "c", "d"]  # a: 3, b: 2, c and d: 1 (alphabetical)
    assert tokenizer.pad_id == 0 and tokenizer.vocab_size == 6
    assert WordTokenizer.build(texts, min_freq=2).tokens == ["<pad>", "<unk>", "a", "b"]
    assert WordTokenizer.build(texts, max_size=3).tokens == ["<pad>", "<unk>", "a"]
    assert tokenizer.encode("A z b c a", max_length=4) == [2, 1, 3, 4]  # unknown z -> 1, truncated to 4


def test_vocabulary_round_trips_through_its_token_list():
    built = WordTokenizer.build(["the film is great", "the plot is dull"])
    restored = WordTokenizer(list(built.tokens))
    text = ["the film is dull and long"]
    assert restored.encode_batch(text, 10) == built.encode_batch(text, 10)
    assert restored.decode(restored.encode(text[0])) == "the film is dull <unk> <unk>"
    with pytest.raises(DlxError, match="does not start with <pad>, <unk>"):
        WordTokenizer(["a", "b"])


def test_hugging_face_tokenizer_from_a_local_folder_truncates_and_reads_its_pad_id(tmp_path):
    folder = write_tiny_hf_tokenizer(tmp_path / "tokenizer")
    tokenizer = HuggingFaceTokenizer(str(folder))
    assert tokenizer.pad_id == 3 and tokenizer.vocab_size == 29
    ids = tokenizer.encode_batch(["the great film is n't dull .", "zzz"], max_length=5)
    assert ids[0][0] == 1 and ids[0][-1] == 2 and len(ids[0]) == 5  # [CLS] ... [SEP], cut to max_length
    assert ids[1] == [1, 0, 2]  # an unknown word is [UNK]
    assert tokenizer.decode(ids[0]) == "[CLS] the great film [SEP]"


def test_a_folder_without_tokenizer_files_or_a_missing_folder_is_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DlxError, match="no tokenizer could be loaded from it"):
        load_pretrained_tokenizer(str(tmp_path / "empty"))
    with pytest.raises(DlxError, match="is not a folder"):
        load_pretrained_tokenizer(str(tmp_path / "nowhere"))


def test_a_hub_name_that_cannot_be_loaded_offline_says_how_to_use_a_local_folder(monkeypatch):
    monkeypatch.setattr("dlx.hub.hub_reachable", lambda: False)
    with pytest.raises(DlxError) as error:
        load_pretrained_tokenizer("no-such-org/no-such-tokenizer")
    message = str(error.value)
    assert "cannot be loaded offline" in message and "data.tokenizer=/path/to/folder" in message
    assert "`model.pretrained=/path/to/folder data.tokenizer=/path/to/folder`" in message  # both, at once


def test_the_hub_counts_as_unreachable_in_offline_mode(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub_reachable() is False
