"""Per-class precision / recall / F1, macro averages and a confusion matrix, hand-written to avoid a
scikit-learn dependency for twenty lines of counting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from classifiers.base import Classifier, Labels
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
    return score_rows_by(classifier, rows, task_name, None, batch_size)[0]


def score_rows_by(classifier: Classifier, rows: Iterable[dict], task_name: str, field: str | None = "platform",
                  batch_size: int = 256) -> tuple[Report, dict[str, Report]]:
    """Like `score_rows`, plus one report per value of `field` (e.g. per platform) from the same predictions;
    the per-group dict is empty when no row has the field."""
    task = TASKS[task_name]
    labelled: list[dict] = []
    labels: list[Labels] = []
    for row in rows:
        if task.gold(row) is None:
            continue
        labelled.append(row)
        if len(labelled) - len(labels) >= batch_size:
            labels += classifier.classify([r.get("text") or "" for r in labelled[len(labels):]])
    labels += classifier.classify([r.get("text") or "" for r in labelled[len(labels):]])
    return grouped_reports(labelled, labels, task_name, field)


def grouped_reports(rows: Sequence[dict], labels: Sequence[Labels], task_name: str,
                    field: str | None = "platform") -> tuple[Report, dict[str, Report]]:
    """Scores given predictions on one task, overall and per value of `field`; rows without a gold label are skipped."""
    task = TASKS[task_name]
    scored = [(task.gold(row), task.predicted(label), row.get(field) if field else None)
              for row, label in zip(rows, labels, strict=True) if task.gold(row) is not None]
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for gold, guess, group in scored:
        if group is not None:
            golds, guesses = groups.setdefault(str(group), ([], []))
            golds.append(gold)
            guesses.append(guess)
    overall = evaluate([gold for gold, _, _ in scored], [guess for _, guess, _ in scored], task.labels)
    return overall, {name: evaluate(golds, guesses, _seen(task.labels, golds, guesses))
                     for name, (golds, guesses) in sorted(groups.items())}


def _seen(labels: Sequence[str], gold: Sequence[str], predicted: Sequence[str]) -> tuple[str, ...]:
    """The labels a group's gold or predictions use: a platform with only "other" (news) is not scored 0 on the
    four classes it never has."""
    used = set(gold) | set(predicted)
    return tuple(label for label in labels if label in used)


def format_groups(reports: dict[str, Report], task_name: str, heading: str = "platform") -> str:
    """One line per group: its size, accuracy, macro-F1 over the classes it uses and, for needs_reply, the F1 of
    "yes" ("-" where no row needs a reply)."""
    reply = task_name == "needs_reply"
    width = max(12, *(len(name) + 2 for name in reports)) if reports else 12
    lines = [f"{heading:{width}}{'n':>6}{'accuracy':>10}{'macro_f1':>10}" + (f"{'yes_f1':>10}" if reply else "")]
    for name, report in reports.items():
        total = sum(score.support for score in report.per_class.values())
        line = f"{name:{width}}{total:>6}{report.accuracy:>10.3f}{report.macro_f1:>10.3f}"
        yes = report.per_class.get("yes")
        lines.append(line + ((f"{yes.f1:>10.3f}" if yes and yes.support else f"{'-':>10}") if reply else ""))
    return "\n".join(lines)


def evaluate_suite(classifier: Classifier, data_dir: Path, own_dir: Path = OWN_INTENT_DIR) -> dict[str, Report]:
    """Every validation figure the model card reports, for any classifier (transformer or lexicon)."""
    reports = {}
    for name, relative_path, task_name in SUITE:
        path = own_dir / "validation.jsonl" if relative_path is None else data_dir / relative_path
        reports[name] = score_rows(classifier, read_jsonl(path), task_name)
    return reports


OWN_TASKS = ("intent", "sentiment", "needs_reply")


def own_set_by_platform(classifier: Classifier, own_dir: Path = OWN_INTENT_DIR) -> dict[str, dict[str, Report]]:
    """The own validation set's intent, sentiment and needs_reply reports per platform, classified once."""
    rows = list(read_jsonl(own_dir / "validation.jsonl"))
    labels = classifier.classify([row["text"] for row in rows])
    return {task_name: grouped_reports(rows, labels, task_name)[1] for task_name in OWN_TASKS}
