"""The shipped MiniLM classifier: Labels contract, robustness, order, threads, and a few sanity labels.

Loads the shipped model once (a few seconds); never trains and never reads the shared data.
"""

import json
import math
import os
import threading
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from classifiers.base import INTENTS, SENTIMENTS  # noqa: E402
from classifiers.data import normalise  # noqa: E402
from classifiers.transformer import (  # noqa: E402
    MAX_LENGTH,
    MODEL_DIR,
    TransformerClassifier,
    encode,
    load_model,
)

COMPLAINT = "@acme worst service ever. my order never arrived, nobody answers and I want a refund now"
pytestmark = pytest.mark.slow  # loads the model (and builds its cached graphs on a machine's first run)

PRAISE = "@acme thank you so much, the new update is amazing and your support team is brilliant. love it!"
QUESTION = "@acme does the starter plan include phone support?"

pytestmark = pytest.mark.slow  # loads the shipped model


@pytest.fixture(scope="module")
def classifier() -> TransformerClassifier:
    return TransformerClassifier()


def test_shipped_artifacts_are_small():
    total = sum(path.stat().st_size for path in Path(MODEL_DIR).iterdir() if path.is_file())
    assert total < 25 * 1024 * 1024
    assert (Path(MODEL_DIR) / "MODEL_CARD.md").is_file()


def test_labels_are_valid_probability_distributions(classifier):
    results = classifier.classify([COMPLAINT, PRAISE, QUESTION])
    assert len(results) == 3
    for labels in results:
        assert labels.sentiment in SENTIMENTS and labels.intent in INTENTS
        assert list(labels.sentiment_scores) == list(SENTIMENTS)
        assert list(labels.intent_scores) == list(INTENTS)
        assert math.isclose(sum(labels.sentiment_scores.values()), 1.0, abs_tol=1e-4)
        assert math.isclose(sum(labels.intent_scores.values()), 1.0, abs_tol=1e-4)
        assert labels.sentiment == max(labels.sentiment_scores, key=labels.sentiment_scores.get)
        assert labels.intent == max(labels.intent_scores, key=labels.intent_scores.get)
        assert isinstance(labels.needs_reply, bool) and 0.0 <= labels.needs_reply_score <= 1.0
        assert labels.needs_reply == (labels.needs_reply_score >= 0.5)
        assert labels.model == classifier.version and classifier.version.startswith("minilm-mt")


def test_clear_complaint_praise_and_question(classifier):
    complaint, praise, question = classifier.classify([COMPLAINT, PRAISE, QUESTION])
    assert (complaint.sentiment, complaint.intent, complaint.needs_reply) == ("negative", "complaint", True)
    assert (praise.sentiment, praise.intent) == ("positive", "praise")
    assert question.intent == "question" and question.needs_reply


def model_with_config(folder: Path, config: dict) -> None:
    """The shipped model in `folder` (its files linked) with `config` as its config.json."""
    for shipped in Path(MODEL_DIR).iterdir():
        if shipped.name != "config.json":
            (folder / shipped.name).symlink_to(shipped)
    (folder / "config.json").write_text(json.dumps(config))


def test_complaint_bias_from_config_shifts_the_complaint_logit(classifier, tmp_path):
    """train.py stores a complaint decision bias in config.json; it is added to the complaint logit, so it moves
    the label and the complaint score together and leaves the other heads alone."""
    config = json.loads((Path(MODEL_DIR) / "config.json").read_text())
    config["intent_bias"] = {"complaint": config.get("intent_bias", {}).get("complaint", 0.0) - 12.0}
    model_with_config(tmp_path, config)
    before = classifier.classify([COMPLAINT])[0]
    after = TransformerClassifier(tmp_path).classify([COMPLAINT])[0]
    assert before.intent == "complaint" and after.intent != "complaint"

    def odds(labels):
        return labels.intent_scores["complaint"] / labels.intent_scores["question"]

    assert odds(after) == pytest.approx(odds(before) * math.exp(-12.0), rel=1e-3)
    assert after.sentiment_scores == pytest.approx(before.sentiment_scores)
    assert after.needs_reply_score == pytest.approx(before.needs_reply_score)


def test_sentiment_bias_from_config_shifts_only_the_sentiment_logits(classifier, tmp_path):
    """train.py stores negative and positive sentiment biases chosen on held-out tweets; they move the sentiment
    label and scores together and leave intent and needs_reply alone."""
    config = json.loads((Path(MODEL_DIR) / "config.json").read_text())
    shipped = config.get("sentiment_bias", {})
    config["sentiment_bias"] = {"negative": shipped.get("negative", 0.0) - 12.0, "positive": shipped.get("positive", 0.0)}
    model_with_config(tmp_path, config)
    before = classifier.classify([COMPLAINT])[0]
    after = TransformerClassifier(tmp_path).classify([COMPLAINT])[0]
    assert before.sentiment == "negative" and after.sentiment != "negative"

    def odds(labels):
        return labels.sentiment_scores["negative"] / labels.sentiment_scores["neutral"]

    assert odds(after) == pytest.approx(odds(before) * math.exp(-12.0), rel=1e-3)
    assert after.intent_scores == pytest.approx(before.intent_scores)
    assert after.needs_reply_score == pytest.approx(before.needs_reply_score)


def test_odd_inputs_never_break_a_batch(classifier):
    odd = [
        "",
        "   \n\t ",
        "very long post " * 700,
        "😡😡😡🔥💯🙏",
        "&lt;b&gt;Fix it&lt;/b&gt; &amp; now https://example.com/a?b=c @acme",
        "\x00\x01 control chars \u200b",
        None,
    ]
    results = classifier.classify(odd + [COMPLAINT])
    assert len(results) == len(odd) + 1
    assert results[0].extra == {"empty": True} and results[0].low_confidence
    assert results[1].extra == {"empty": True}
    assert results[-1].intent == "complaint"
    for labels in results:
        assert math.isclose(sum(labels.sentiment_scores.values()), 1.0, abs_tol=1e-4)


def test_non_english_is_labelled_but_flagged(classifier):
    german, spanish, english = classifier.classify(
        [
            "Die App stürzt seit dem letzten Update ständig ab, bitte schnell beheben",
            "El pedido nunca llegó y nadie responde a mis correos, estoy muy molesto",
            "The app keeps crashing since the last update, please fix it quickly",
        ]
    )
    assert (german.language, german.low_confidence) == ("de", True)
    assert (spanish.language, spanish.low_confidence) == ("es", True)
    assert german.sentiment in SENTIMENTS and spanish.intent in INTENTS
    assert english.language == "en"


def test_one_failing_text_does_not_block_the_others(classifier, monkeypatch):
    predict = classifier._predict

    def fail_on_poison(texts):
        if any("poison" in text for text in texts):
            raise RuntimeError("boom")
        return predict(texts)

    monkeypatch.setattr(classifier, "_predict", fail_on_poison)
    results = classifier.classify([COMPLAINT, "poison pill", PRAISE])
    assert results[0].intent == "complaint" and results[2].intent == "praise"
    assert results[1].extra == {"error": "classifier failed"} and results[1].low_confidence


def test_order_is_kept_despite_length_sorting(classifier):
    texts = [PRAISE, "ok", COMPLAINT + " " + COMPLAINT, QUESTION, "", "love it"]
    together = classifier.classify(texts)
    alone = [classifier.classify([text])[0] for text in texts]
    assert [(r.sentiment, r.intent) for r in together] == [(r.sentiment, r.intent) for r in alone]
    for a, b in zip(together, alone):
        assert a.sentiment_scores["negative"] == pytest.approx(b.sentiment_scores["negative"], abs=0.05)


def _mixed_batch() -> list[str]:
    """32 brand posts from 1 to ~120 tokens, so the batch is padded well past most of its texts."""
    openings = ["@acme", "hey @acme_help", "to whoever runs @acme:", "@acme @acmesupport"]
    bodies = [
        "why is my card charged twice?",
        "love the new dark mode",
        "the app crashes every time I open settings, third day in a row, fix it please",
        "you should add an export to CSV button",
        "ok",
        "my parcel shows delivered but nothing arrived and the chat bot keeps looping me back " * 3,
        "great job on the update!!! 🎉🎉",
        "is the store open on sunday",
    ]
    return [f"{openings[i % 4]} {bodies[i % 8]}" + (" thanks" * (i // 8)) for i in range(32)]


def test_labels_do_not_depend_on_batch_mates(classifier):
    """Activation scales are per token, so a post gets the same labels and probabilities alone as in any batch."""
    texts = _mixed_batch()
    together = classifier.classify(texts)
    for text, in_batch in zip(texts, together):
        alone = classifier.classify([text])[0]
        assert (alone.sentiment, alone.intent, alone.needs_reply) == (
            in_batch.sentiment, in_batch.intent, in_batch.needs_reply
        )
        for label in SENTIMENTS:
            assert alone.sentiment_scores[label] == pytest.approx(in_batch.sentiment_scores[label], abs=1e-6)
        for label in INTENTS:
            assert alone.intent_scores[label] == pytest.approx(in_batch.intent_scores[label], abs=1e-6)
        assert alone.needs_reply_score == pytest.approx(in_batch.needs_reply_score, abs=1e-6)


def test_int8_scores_are_identical_alone_and_in_different_batches():
    """Not just close: on the int8 path (what ships wherever it measures fastest) the same bits whichever
    texts share the call and however many there are."""
    classifier = TransformerClassifier(path="onnxruntime-int8")
    texts = _mixed_batch()
    alone = [classifier.classify([text])[0] for text in texts]
    forwards = classifier.classify(texts)
    backwards = classifier.classify(list(reversed(texts)))[::-1]
    halves = classifier.classify(texts[::2]) + classifier.classify(texts[1::2])
    interleaved = [None] * len(texts)
    interleaved[::2], interleaved[1::2] = halves[: len(texts[::2])], halves[len(texts[::2]):]
    assert alone == forwards == backwards == interleaved


def test_packed_encoder_computes_what_transformers_computes():
    """PackedEncoder re-implements BERT's forward pass without padding; unquantised, it must agree with the
    transformers model it wraps on a padded batch."""
    tokenizer, model, _ = load_model()
    batch = encode(tokenizer, [normalise(text) for text in _mixed_batch()])
    with torch.inference_mode():
        packed = model(**batch)
        model.encoder = model.encoder.bert
        reference = model(**batch)
    for ours, theirs in zip(packed, reference):
        assert torch.allclose(ours, theirs, atol=1e-4)


def test_the_inference_model_built_without_transformers_is_the_trained_model():
    """The unquantised path loads torch only (no transformers): same tensors, same outputs as `load_model`."""
    from classifiers.torch_model import load_inference_model

    tokenizer, model, _ = load_model()
    batch = encode(tokenizer, [normalise(text) for text in _mixed_batch()])
    with torch.inference_mode():
        for ours, theirs in zip(load_inference_model()(**batch), model(**batch)):
            assert torch.allclose(ours, theirs, atol=1e-5)


def test_classify_is_thread_safe(classifier):
    texts = [COMPLAINT, PRAISE, QUESTION] * 4
    expected = [(r.sentiment, r.intent) for r in classifier.classify(texts)]
    outcomes: list = []

    def work() -> None:
        outcomes.append([(r.sentiment, r.intent) for r in classifier.classify(texts)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [expected] * 4


def test_long_posts_keep_head_and_tail(classifier):
    text = "opening words " + "filler " * 3000 + "closing request"
    batch = encode(classifier._tokenizer, [text])
    assert batch["input_ids"].shape == (1, MAX_LENGTH)
    decoded = classifier._tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True)
    assert decoded.startswith("opening words") and decoded.endswith("closing request")


def test_normalise_matches_tweeteval_conventions():
    assert normalise("@AcmeHelp &amp; @bob  see https://t.co/xyz now") == "@user & @user see now"
