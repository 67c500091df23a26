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


def test_eval_reports_each_platform_when_rows_have_one(tmp_path):
    data = tmp_path / "mentions.jsonl"
    rows = [
        {"text": "I hate this, worst ever", "sentiment": "negative", "platform": "x"},
        {"text": "Absolutely love it", "sentiment": "positive", "platform": "x"},
        {"text": "The shop is on Main Street", "sentiment": "neutral", "platform": "mastodon"},
        {"text": "great stuff", "sentiment": "negative", "platform": "mastodon"},
        {"text": "no platform on this one, still scored overall", "sentiment": "neutral"},
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = runner.invoke(app, ["eval", "--data", str(data), "--task", "sentiment", "--classifier", "lexicon"])
    assert result.exit_code == 0, result.output
    assert "n=5" in result.stdout
    table = result.stdout.split("\nplatform")[1].splitlines()[1:]
    platform_lines = {line.split()[0]: line.split()[1:] for line in table}
    assert platform_lines["x"][:2] == ["2", "1.000"]
    assert platform_lines["mastodon"][:2] == ["2", "0.500"]


def test_eval_without_platforms_prints_no_platform_table(tmp_path):
    data = tmp_path / "plain.jsonl"
    data.write_text(json.dumps({"text": "I love it", "label": "positive"}) + "\n")
    result = runner.invoke(app, ["eval", "--data", str(data), "--task", "sentiment", "--classifier", "lexicon"])
    assert result.exit_code == 0, result.output
    assert "\nplatform" not in result.stdout


def test_needs_reply_per_platform_shows_the_yes_f1():
    from classifiers.base import Labels
    from classifiers.metrics import format_groups, grouped_reports

    def labels(reply: bool) -> Labels:
        return Labels("neutral", {"neutral": 1.0}, "other", {"other": 1.0}, reply, float(reply), "test")

    rows = [{"text": "a", "needs_reply": True, "platform": "bluesky"},
            {"text": "b", "needs_reply": False, "platform": "bluesky"},
            {"text": "c", "needs_reply": True, "platform": "news"}, {"text": "d"}]
    predicted = [labels(True), labels(True), labels(False), labels(True)]
    overall, by_platform = grouped_reports(rows, predicted, "needs_reply")
    assert overall.summary()["n"] == 3
    assert by_platform["bluesky"].per_class["yes"].f1 == pytest.approx(2 / 3)
    assert by_platform["news"].per_class["yes"].f1 == 0.0
    table = format_groups(by_platform, "needs_reply").splitlines()
    assert table[0].split() == ["platform", "n", "accuracy", "macro_f1", "yes_f1"]
    assert table[1].split() == ["bluesky", "2", "0.500", "0.333", "0.667"]


def test_platform_figures_use_only_the_classes_the_platform_has():
    from classifiers.base import Labels
    from classifiers.metrics import format_groups, grouped_reports

    def labels(intent: str, reply: bool) -> Labels:
        return Labels("neutral", {"neutral": 1.0}, intent, {intent: 1.0}, reply, float(reply), "test")

    news = [{"text": f"headline {i}", "intent": "other", "needs_reply": False, "platform": "news"} for i in range(4)]
    predicted = [labels("other", False)] * 3 + [labels("complaint", False)]
    overall, by_platform = grouped_reports(news, predicted, "intent")
    assert overall.macro_f1 == pytest.approx((0 + 2 * 3 / 7) / 5), "overall keeps all five classes"
    assert by_platform["news"].labels == ("complaint", "other")
    assert by_platform["news"].macro_f1 == pytest.approx((0 + 6 / 7) / 2)
    _, replies = grouped_reports(news, predicted, "needs_reply")
    assert format_groups(replies, "needs_reply").splitlines()[1].split() == ["news", "4", "1.000", "1.000", "-"]
