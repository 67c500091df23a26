"""`classify`, `eval` and `train` commands, mounted into the mentionwatch CLI.

`classify` streams: it reads JSONL (or plain lines) from stdin in batches and writes one JSON line per
input as soon as its batch is labelled, so a 10,000-line file never sits in memory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from enum import Enum
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Optional

import typer

from classifiers.base import Classifier, Labels
from monitor.core import progress
from monitor.core.logs import get_logger

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = get_logger(__name__)
app = typer.Typer(help="Label mentions with sentiment, intent and needs_reply; score and train the model.")


class ClassifierName(str, Enum):
    transformer = "transformer"
    lexicon = "lexicon"


class TaskName(str, Enum):
    sentiment = "sentiment"
    intent = "intent"
    complaint = "complaint"
    app_reviews = "app_reviews"
    needs_reply = "needs_reply"


def make_classifier(name: ClassifierName, model_dir: Path | None = None) -> Classifier:
    """Imports lazily: the lexicon path never loads torch."""
    if name is ClassifierName.lexicon:
        from classifiers.lexicon import LexiconClassifier

        return LexiconClassifier()
    from classifiers import load_transformer

    return load_transformer(model_dir)


def labels_to_json(labels: Labels) -> dict:
    """The prediction fields `classify` adds to each row; they replace input fields of the same name."""
    return {
        "sentiment": labels.sentiment,
        "sentiment_scores": {k: round(v, 4) for k, v in labels.sentiment_scores.items()},
        "intent": labels.intent,
        "intent_scores": {k: round(v, 4) for k, v in labels.intent_scores.items()},
        "needs_reply": labels.needs_reply,
        "needs_reply_score": round(labels.needs_reply_score, 4),
        "language": labels.language,
        "low_confidence": labels.low_confidence,
        "model": labels.model,
    }


def parse_line(line: str) -> dict:
    """A JSON object line as is; anything else (plain text, a bare JSON string) becomes {"text": line}."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return {"text": line.rstrip("\n")}
    return row if isinstance(row, dict) else {"text": row if isinstance(row, str) else line.rstrip("\n")}


def read_rows(lines: Iterable[str]) -> Iterator[dict]:
    for line in lines:
        if line.strip():
            yield parse_line(line)


def batched(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def classify_rows(classifier: Classifier, rows: Iterable[dict], batch_size: int) -> Iterator[dict]:
    """Rows out in input order with the labels merged in; a row without a string `text` is labelled as empty."""
    for batch in batched(rows, batch_size):
        texts = [row.get("text") if isinstance(row.get("text"), str) else "" for row in batch]
        for row, labels in zip(batch, classifier.classify(texts)):
            yield {**row, **labels_to_json(labels)}


class ProgressReport:
    """Rows labelled so far, on stderr so stdout stays pure JSONL: a live counter on a terminal, a plain line
    every `every` rows otherwise. Silent for inputs shorter than `every` rows."""

    def __init__(self, stream=None, every: int = 1000, clock=time.monotonic) -> None:
        self._stream = stream or sys.stderr
        self._every = every
        self._clock = clock
        self._started = clock()
        self._done = 0
        self._next_line = every
        self._reported = 0  # rows the last plain line counted
        self._live = None

    def _rate(self) -> float:
        return self._done / max(self._clock() - self._started, 1e-9)

    def advance(self, rows: int) -> None:
        self._done += rows
        if self._done < self._every or progress.quiet():
            return
        if self._stream.isatty() and progress.bars():
            if self._live is None:
                from rich.console import Console
                from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

                self._live = Progress(SpinnerColumn(), TextColumn("labelled {task.completed:,.0f} rows"),
                                      TextColumn("{task.fields[rate]:,.0f}/s"), TimeElapsedColumn(),
                                      console=Console(file=self._stream), transient=True,
                                      redirect_stdout=False, redirect_stderr=False)  # stdout is the JSONL
                self._live.start()
                self._task = self._live.add_task("classify", total=None, rate=0.0)
            self._live.update(self._task, completed=self._done, rate=self._rate())
        elif self._done >= self._next_line:
            self._next_line = (self._done // self._every + 1) * self._every
            self._reported = self._done
            self._line(f"classify: {self._done:,} rows labelled ({self._rate():,.0f}/s)")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
        if self._done >= self._every and self._done != self._reported and not progress.quiet():
            self._line(f"classify: done, {self._done:,} rows labelled ({self._rate():,.0f}/s)")

    def _line(self, text: str) -> None:
        """A plain line, or a log record where stderr carries JSON log lines."""
        if progress.bars():
            self._stream.write(text + "\n")
            self._stream.flush()
        else:
            log.info("%s", text)


@app.command()
def classify(
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to label; without any, JSONL is read from stdin."),
    classifier: ClassifierName = typer.Option(ClassifierName.transformer, help="Which model labels the texts."),
    batch_size: int = typer.Option(64, min=1, help="Texts per model call."),
    model_dir: Optional[Path] = typer.Option(None, help="Transformer artifacts (default: the shipped model)."),
) -> None:
    """Label texts: one JSON line out per input, in input order, other input fields passed through."""
    model = make_classifier(classifier, model_dir)
    rows = ({"text": text} for text in texts) if texts else read_rows(sys.stdin)
    report = ProgressReport()
    try:
        for batch in batched(classify_rows(model, rows, batch_size), batch_size):
            sys.stdout.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in batch))
            sys.stdout.flush()
            report.advance(len(batch))
    finally:
        report.close()


@app.command()
def warm(
    model_dir: Optional[Path] = typer.Option(None, help="Transformer artifacts (default: the shipped model)."),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads (default: what the daemon uses)."),
) -> None:
    """Build the classifier's ONNX graphs and pick its fastest path on this machine, into the cache, so the
    daemon's first load takes about a second. `make install` and the Docker image run it; the daemon
    does the same on its first load when nothing is cached."""
    from classifiers.transformer import TransformerClassifier

    started = time.monotonic()
    model = TransformerClassifier(model_dir, threads=threads)
    rates = ", ".join(f"{path} {rate:,.0f}/s" for path, rate in model.rates.items()) or "chosen earlier"
    typer.echo(f"classifier {model.version}: {model.runtime} ({rates}); ready in "
               f"{time.monotonic() - started:.1f} s")


@app.command("eval")
def evaluate_command(
    data: Path = typer.Option(..., exists=True, dir_okay=False, help="Labelled JSONL file."),
    task: TaskName = typer.Option(TaskName.sentiment, help="Which label to score; see classifiers/data.py TASKS."),
    classifier: ClassifierName = typer.Option(ClassifierName.transformer, help="Which model to score."),
    model_dir: Optional[Path] = typer.Option(None, help="Transformer artifacts (default: the shipped model)."),
) -> None:
    """Per-class precision / recall / F1, macro scores and the confusion matrix for a labelled JSONL file, then
    one line per platform when its rows have a `platform` field."""
    from classifiers.data import read_jsonl
    from classifiers.metrics import format_groups, score_rows_by

    model = make_classifier(classifier, model_dir)
    report, by_platform = score_rows_by(model, read_jsonl(data), task.value, "platform")
    typer.echo(f"{data} task={task.value} classifier={model.version} n={report.summary()['n']}")
    typer.echo(report.format())
    if by_platform:
        typer.echo("")
        typer.echo(format_groups(by_platform, task.value))


def training_output(out: Path | None, force: bool, now: float | None = None) -> Path:
    """Where `train` writes: a new timestamped folder by default. An existing non-empty folder, and the
    shipped model above all (what the daemon loads), is only overwritten with --force."""
    from classifiers.tokens import MODEL_DIR

    if out is None:
        return Path(time.strftime("mentionwatch-model-%Y%m%d-%H%M%S", time.localtime(now)))
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file; expected a folder", param_hint="--out")
    if out.is_dir() and any(out.iterdir()) and not force:
        what = "the shipped model the daemon loads" if out.resolve() == MODEL_DIR.resolve() else "a non-empty folder"
        raise typer.BadParameter(f"{out} is {what}; pass --force to overwrite it, or choose a new folder",
                                 param_hint="--out")
    return out


@app.command()
def train(
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False,
                              help="The labelled data folder (tweet_eval and the complaints set; see the README)."),
    out: Optional[Path] = typer.Option(None, help="Where the trained artifacts go (default: a new folder "
                                                  "mentionwatch-model-<time> here)."),
    force: bool = typer.Option(False, "--force", help="Overwrite a non-empty --out, the shipped model included."),
    feedback: Optional[list[Path]] = typer.Option(None, help="Corrected-label JSONL files to mix in (repeatable)."),
    epochs: int = typer.Option(2, min=1),
    threads: int = typer.Option(2, min=1),
) -> None:
    """Fine-tune the transformer model (about 25 minutes on 2 idle cores) and write metrics.json beside it."""
    out = training_output(out, force)
    from classifiers.train import Settings, run

    from monitor.core.progress import Progress

    typer.echo(f"training into {out}", err=True)
    with Progress("training", unit="steps") as steps:
        run(data, out, list(feedback or []), settings=Settings(epochs=epochs), threads=threads, log=typer.echo,
            on_step=lambda step, total: steps.update(step, total=total))
