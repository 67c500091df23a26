"""Per-class precision / recall / F1, macro averages and a confusion matrix, hand-written to avoid a
scikit-learn dependency for twenty lines of counting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from classifiers.base import Classifier
from classifiers.data import OWN_INTENT_DIR, SUITE, TASKS, read_jsonl


@dataclass(frozen=True)
class ClassScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    labels: tuple[str, ...]
    per_class: dict[str, ClassScore]
    confusion: list[list[int]]
    accuracy: float

    @property
    def macro_precision(self) -> float:
        return _mean([score.precision for score in self.per_class.values()])

    @property
    def macro_recall(self) -> float:
        return _mean([score.recall for score in self.per_class.values()])

    @property
    def macro_f1(self) -> float:
        return _mean([score.f1 for score in self.per_class.values()])

    def summary(self) -> dict[str, float]:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro_precision": round(self.macro_precision, 4),
            "macro_recall": round(self.macro_recall, 4),
            "macro_f1": round(self.macro_f1, 4),
            "n": sum(score.support for score in self.per_class.values()),
        }

    def format(self) -> str:
        """A plain-text table: per-class scores, macro averages, then the confusion matrix (rows are gold)."""
        width = max(12, *(len(label) + 2 for label in self.labels))
        lines = [f"{'':{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
        for label, score in self.per_class.items():
            lines.append(
                f"{label:{width}}{score.precision:>10.3f}{score.recall:>10.3f}{score.f1:>10.3f}{score.support:>10}"
            )
        total = sum(score.support for score in self.per_class.values())
        lines.append(
            f"{'macro avg':{width}}{self.macro_precision:>10.3f}{self.macro_recall:>10.3f}"
            f"{self.macro_f1:>10.3f}{total:>10}"
        )
        lines.append(f"{'accuracy':{width}}{self.accuracy:>30.3f}{total:>10}")
        lines.append("")
        lines.append("confusion matrix (rows: gold, columns: predicted)")
        lines.append(f"{'':{width}}" + "".join(f"{label[:width - 1]:>{width}}" for label in self.labels))
        for label, row in zip(self.labels, self.confusion):
            lines.append(f"{label:{width}}" + "".join(f"{count:>{width}}" for count in row))
        return "\n".join(lines)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def evaluate(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> Report:
    """Scores predictions against gold labels; `labels` fixes the class order (default: sorted, seen in either)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    labels = tuple(labels or sorted(set(gold) | set(predicted)))
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for truth, guess in zip(gold, predicted):
        confusion[index[truth]][index[guess]] += 1
    per_class = {}
    for i, label in enumerate(labels):
        true_positive = confusion[i][i]
        support = sum(confusion[i])
        predicted_count = sum(row[i] for row in confusion)
        precision = _ratio(true_positive, predicted_count)
        recall = _ratio(true_positive, support)
        f1 = _ratio(2 * true_positive, support + predicted_count)
        per_class[label] = ClassScore(precision, recall, f1, support)
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return Report(labels, per_class, confusion, _ratio(correct, len(gold)))


def score_rows(classifier: Classifier, rows: Iterable[dict], task_name: str, batch_size: int = 256) -> Report:
    """Classifies labelled JSONL rows in batches and scores them on one task; rows without a gold label are skipped."""
    task = TASKS[task_name]
    gold: list[str] = []
    predicted: list[str] = []
    batch: list[dict] = []

    def flush() -> None:
        for labels in classifier.classify([row.get("text") or "" for row in batch]):
            predicted.append(task.predicted(labels))
        batch.clear()

    for row in rows:
        label = task.gold(row)
        if label is None:
            continue
        gold.append(label)
        batch.append(row)
        if len(batch) >= batch_size:
            flush()
    flush()
    return evaluate(gold, predicted, task.labels)


def evaluate_suite(classifier: Classifier, data_dir: Path, own_dir: Path = OWN_INTENT_DIR) -> dict[str, Report]:
    """Every validation figure the model card reports, for any classifier (transformer or lexicon)."""
    reports = {}
    for name, relative_path, task_name in SUITE:
        path = own_dir / "validation.jsonl" if relative_path is None else data_dir / relative_path
        reports[name] = score_rows(classifier, read_jsonl(path), task_name)
    return reports
