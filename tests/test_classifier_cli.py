"""classify / eval CLI commands, the metrics behind eval, and the feedback format train accepts."""

import io
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from classifiers.cli import ProgressReport, app, classify_rows  # noqa: E402
from classifiers.data import feedback  # noqa: E402
from classifiers.lexicon import LexiconClassifier  # noqa: E402
from classifiers.metrics import evaluate  # noqa: E402

runner = CliRunner()


def output_rows(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.slow  # loads the shipped model
def test_classify_arguments_with_transformer():
    rows = output_rows(runner.invoke(app, ["classify", "I love this app, thank you!", "Where is my refund??"]))
    assert [row["text"] for row in rows] == ["I love this app, thank you!", "Where is my refund??"]
    for row in rows:
        assert row["model"].startswith("minilm-mt")
        assert isinstance(row["needs_reply"], bool)
        assert sum(row["sentiment_scores"].values()) == pytest.approx(1.0, abs=1e-3)
        assert row["intent"] in row["intent_scores"]


def test_classify_stdin_passes_fields_through_in_order():
    lines = [
        json.dumps({"id": 1, "text": "this is awful", "source": {"platform": "x", "url": "u1"}}),
        "a plain text line, not JSON",
        json.dumps({"id": 3, "author": "bob"}),
        "",
        json.dumps({"id": 4, "text": "Nice!"}),
    ]
    result = runner.invoke(app, ["classify", "--classifier", "lexicon"], input="\n".join(lines) + "\n")
    rows = output_rows(result)
    assert [row.get("id") for row in rows] == [1, None, 3, 4]
    assert rows[0]["source"] == {"platform": "x", "url": "u1"} and rows[0]["sentiment"] == "negative"
    assert rows[1]["text"] == "a plain text line, not JSON"
    assert rows[2]["author"] == "bob" and rows[2]["sentiment"] == "neutral"
    assert rows[3]["model"] == "lexicon-vader-1"


def test_classify_streams_ten_thousand_lines_in_order():
    lines = "".join(json.dumps({"n": i, "text": f"post number {i} is great"}) + "\n" for i in range(10_000))
    rows = output_rows(runner.invoke(app, ["classify", "--classifier", "lexicon", "--batch-size", "500"], input=lines))
    assert [row["n"] for row in rows] == list(range(10_000))


def test_classify_reports_progress_on_stderr_for_long_inputs():
    lines = "".join(json.dumps({"n": i, "text": f"post number {i} is great"}) + "\n" for i in range(2_500))
    result = runner.invoke(app, ["classify", "--classifier", "lexicon", "--batch-size", "500"], input=lines)
    assert [row["n"] for row in output_rows(result)] == list(range(2_500))
    progress = result.stderr.splitlines()
    assert [line.split(" rows")[0] for line in progress] == [
        "classify: 1,000", "classify: 2,000", "classify: done, 2,500"]
    short = runner.invoke(app, ["classify", "--classifier", "lexicon"], input="one\ntwo\n")
    assert short.stderr == "" and len(output_rows(short)) == 2


def test_progress_on_a_terminal_leaves_stdout_to_the_rows(capsys):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    report = ProgressReport(stream=terminal, every=10)
    report.advance(20)
    print('{"n": 1}')
    report.close()
    assert capsys.readouterr().out == '{"n": 1}\n'
    assert "classify: done, 20 rows labelled" in terminal.getvalue()


def test_classify_rows_consumes_input_one_batch_at_a_time():
    consumed = []

    def rows():
        for i in range(1000):
            consumed.append(i)
            yield {"text": f"text {i}"}

    first = next(classify_rows(LexiconClassifier(), rows(), batch_size=32))
    assert first["text"] == "text 0"
    assert len(consumed) == 32


def test_eval_prints_scores_and_confusion_matrix(tmp_path):
    data = tmp_path / "labelled.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {"text": "I hate this, worst ever", "label": "negative"},
                {"text": "Absolutely love it", "label": "positive"},
                {"text": "The shop is on Main Street", "label": "neutral"},
                {"text": "great stuff", "label": "negative"},
            ]
        )
    )
    result = runner.invoke(app, ["eval", "--data", str(data), "--task", "sentiment", "--classifier", "lexicon"])
    assert result.exit_code == 0, result.output
    assert "confusion matrix" in result.stdout
    assert "macro avg" in result.stdout and "n=4" in result.stdout
    matrix = result.stdout.split("confusion matrix")[1].splitlines()
    assert matrix[2].split() == ["negative", "1", "0", "1"]


@pytest.mark.slow  # loads the shipped model
def test_eval_intent_task_with_transformer(tmp_path):
    data = tmp_path / "intent.jsonl"
    data.write_text(json.dumps({"text": "please add a dark mode to the app", "intent": "suggestion"}) + "\n")
    result = runner.invoke(app, ["eval", "--data", str(data), "--task", "intent"])
    assert result.exit_code == 0, result.output
    assert "suggestion" in result.stdout and "confusion matrix" in result.stdout


def test_metrics_match_hand_computed_values():
    report = evaluate(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert report.per_class["a"].precision == 1.0 and report.per_class["a"].recall == 0.5
    assert report.per_class["b"].precision == pytest.approx(2 / 3) and report.per_class["b"].recall == 1.0
    assert report.macro_recall == pytest.approx(0.75)
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert report.confusion == [[1, 1], [0, 2]]


def test_feedback_format(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text(
        json.dumps({"text": "refund me", "intent": "complaint"})
        + "\n"
        + json.dumps({"text": "meh", "sentiment": "neutral", "needs_reply": False})
        + "\n"
    )
    complaint, neutral = feedback(path)
    assert complaint.intents == {"complaint"} and complaint.needs_reply is True and complaint.sentiment is None
    assert neutral.intents is None and neutral.needs_reply is False and neutral.sentiment == "neutral"
    path.write_text(json.dumps({"text": "x", "intent": "rant"}) + "\n")
    with pytest.raises(ValueError, match="rant"):
        feedback(path)
