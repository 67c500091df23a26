"""The project's own intent set (classifiers/intent_data): its format, its coverage of the platforms the product
reads, the product's labelling rules that can be checked mechanically, and validation brands unseen in training."""

import json
import re
from collections import Counter

import pytest

from classifiers.base import INTENTS, SENTIMENTS
from classifiers.data import OWN_INTENT_DIR, own_intent

SPLITS = ("train", "validation")
PLATFORMS = {"x", "reddit", "app_store", "google_play", "review_site", "hacker_news", "blog", "news", "bluesky",
             "mastodon", "facebook", "instagram", "youtube", "forum"}
PRODUCT_PLATFORMS = {"x", "reddit", "app_store", "review_site", "hacker_news", "blog", "news", "bluesky", "mastodon"}
REVIEW_PLATFORMS = {"app_store", "google_play", "review_site"}
LANGUAGES = {"en", "de", "es", "fr"}


def rows(split: str) -> list[dict]:
    return [json.loads(line) for line in (OWN_INTENT_DIR / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def brands() -> dict[str, dict[str, list[str]]]:
    return json.loads((OWN_INTENT_DIR / "brands.json").read_text(encoding="utf-8"))


def named(text: str, spellings: dict[str, list[str]]) -> set[str]:
    """The brands a text names: any spelling at the start of a word, so "@Greenfork" and "Greenfork's" count."""
    lowered = text.lower()
    return {brand for brand, forms in spellings.items()
            if any(re.search(r"(?<![a-z0-9])" + re.escape(form), lowered) for form in forms)}


@pytest.mark.parametrize("split", SPLITS)
def test_every_row_has_the_three_labels_and_valid_metadata(split):
    for number, row in enumerate(rows(split), 1):
        where = f"{split}.jsonl:{number}"
        assert isinstance(row["text"], str) and row["text"].strip(), where
        assert row["intent"] in INTENTS and row["sentiment"] in SENTIMENTS, where
        assert isinstance(row["needs_reply"], bool), where
        assert row["platform"] in PLATFORMS, where
        assert row["lang"] in LANGUAGES, where
        if row["platform"] in REVIEW_PLATFORMS:
            assert row["rating"] in (1, 2, 3, 4, 5), where
        else:
            assert "rating" not in row, where
    assert len(own_intent(split)) == len(rows(split))


def test_size_split_share_platforms_and_languages():
    train, validation = rows("train"), rows("validation")
    assert len(train) + len(validation) >= 3000
    assert 0.2 <= len(validation) / (len(train) + len(validation)) <= 0.3
    for split_rows in (train, validation):
        platforms = Counter(row["platform"] for row in split_rows)
        assert all(platforms[name] >= 20 for name in PRODUCT_PLATFORMS), platforms
        reddit = [row["text"] for row in split_rows if row["platform"] == "reddit"]
        assert sum("\n\n" in text for text in reddit) >= 20, "Reddit posts are title, blank line, body"
        assert sum("\n\n" not in text for text in reddit) >= 20, "Reddit comments"
        languages = Counter(row["lang"] for row in split_rows)
        assert all(languages[lang] >= 10 for lang in ("de", "es", "fr")), languages
        assert 0.02 <= 1 - languages["en"] / len(split_rows) <= 0.1
        intents = Counter(row["intent"] for row in split_rows)
        assert min(intents.values()) >= 0.12 * len(split_rows), intents


@pytest.mark.parametrize("split", SPLITS)
def test_rules_from_the_label_definition(split):
    for number, row in enumerate(rows(split), 1):
        where = f"{split}.jsonl:{number}: {row['text'][:60]}"
        if row["intent"] == "complaint":
            assert row["sentiment"] == "negative" and row["needs_reply"], where
        if row["intent"] == "question":
            assert row["needs_reply"], where
        if row["intent"] == "praise":
            assert row["sentiment"] == "positive", where
        if row["platform"] == "news":
            assert row["intent"] == "other" and not row["needs_reply"], where
    praise = [row for row in rows(split) if row["intent"] == "praise"]
    assert sum(not row["needs_reply"] for row in praise) >= 0.2 * len(praise), "third-person praise needs no reply"
    suggestions = [row for row in rows(split) if row["intent"] == "suggestion"]
    assert any(not row["needs_reply"] for row in suggestions), "asides in third-party threads need no reply"
    other = [row for row in rows(split) if row["intent"] == "other"]
    assert 0 < sum(row["needs_reply"] for row in other) <= 0.1 * len(other), "only phishing-like posts"
    news = Counter(row["sentiment"] for row in rows(split) if row["platform"] == "news")
    assert min(news.values()) >= 5 and len(news) == 3, "news takes the sign of its event"


def test_validation_brands_are_never_seen_in_training():
    lists = brands()
    assert not set(lists["train"]) & set(lists["validation"])
    assert len(lists["validation"]) >= 20
    for split, other in (("train", "validation"), ("validation", "train")):
        leaks = [(row["text"][:60], named(row["text"], lists[other])) for row in rows(split)
                 if named(row["text"], lists[other])]
        assert not leaks, f"{split} names {other} brands: {leaks[:5]}"
        used = set().union(*(named(row["text"], lists[split]) for row in rows(split)))
        assert used == set(lists[split]), f"listed but absent from {split}: {set(lists[split]) - used}"


def test_readme_lists_every_brand_and_the_row_counts():
    readme = (OWN_INTENT_DIR / "README.md").read_text(encoding="utf-8")
    lists = brands()
    assert all(brand in readme for split in SPLITS for brand in lists[split])
    for split in SPLITS:
        assert f"| `{split}.jsonl` | {len(rows(split)):,} |" in readme


def test_no_text_is_in_both_splits_or_twice():
    texts = [row["text"].strip().lower() for split in SPLITS for row in rows(split)]
    assert len(texts) == len(set(texts))


def test_brand_check_catches_handles_and_possessives():
    spellings = {"Greenfork": ["greenfork"], "Tandem Bank": ["tandem bank", "tandembank"]}
    assert named("@Greenfork my box is late", spellings) == {"Greenfork"}
    assert named("Greenfork's recipes and @TandemBank", spellings) == {"Greenfork", "Tandem Bank"}
    assert named("a tandem bicycle ride", spellings) == set()
