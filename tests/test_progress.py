"""Progress of long work: a bar on a terminal, log lines elsewhere only when it takes long, nothing
with --quiet, and never a bar where stderr is a log (the daemon, JSON logs)."""

from __future__ import annotations

import io
import logging

import pytest

from monitor.core import progress
from monitor.core.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def default_mode():
    progress.configure()
    yield
    progress.configure()


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mentionwatch.monitor.core.progress"]


def test_a_terminal_gets_a_bar_and_no_log_lines(caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    terminal = Terminal()
    with Progress("exporting mentions", total=3, stream=terminal) as bar:
        for _ in range(3):
            bar.advance()
    assert "exporting mentions" in terminal.getvalue()
    assert lines(caplog) == []


def test_elsewhere_long_work_logs_a_line_every_interval_and_when_done(caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    clock = [0.0]
    with Progress("exporting mentions", unit="rows", stream=io.StringIO(), every=10, monotonic=lambda: clock[0]) as p:
        for _ in range(25):
            clock[0] += 1
            p.advance(100)
    assert lines(caplog) == ["exporting mentions: 1,000 rows", "exporting mentions: 2,000 rows",
                             "exporting mentions: done, 2,500 rows in 25 s"]


def test_short_work_off_a_terminal_says_nothing(caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    stream = io.StringIO()
    with Progress("exporting mentions", total=3, stream=stream, monotonic=lambda: 0.0) as p:
        p.advance(3)
    assert stream.getvalue() == "" and lines(caplog) == []


def test_a_single_opaque_step_says_what_it_waits_for(caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    clock = [0.0]
    with Progress("loading the classifier", stream=io.StringIO(), monotonic=lambda: clock[0]):
        clock[0] += 42
    assert lines(caplog) == ["loading the classifier…", "loading the classifier: done in 42 s"]


@pytest.mark.parametrize("mode", [{"quiet": True}, {"bars": False, "quiet": True}])
def test_quiet_means_nothing_anywhere(caplog, mode):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    progress.configure(**mode)
    clock = [0.0]
    for stream in (Terminal(), io.StringIO()):
        with Progress("report", total=2, stream=stream, every=1, monotonic=lambda: clock[0]) as p:
            clock[0] += 5
            p.update(1, "report: acme")
        assert stream.getvalue() == ""
    assert lines(caplog) == []


def test_where_stderr_is_a_log_a_terminal_gets_lines_not_bars(caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    progress.configure(bars=False)  # `run`, or --log-format json
    terminal, clock = Terminal(), [0.0]
    with Progress("report", total=2, stream=terminal, every=1, monotonic=lambda: clock[0]) as p:
        clock[0] += 5
        p.update(1, "report: acme, complaint terms and replies")
    assert terminal.getvalue() == ""
    assert lines(caplog) == ["report: acme, complaint terms and replies: 1 of 2",
                             "report: acme, complaint terms and replies: done, 1 of 2 in 5 s"]


@pytest.mark.slow
def test_training_reports_each_step_for_its_progress_bar():
    from classifiers.data import Example
    from classifiers.train import Settings, train

    examples = [Example(f"Acme broke my build again, day {n}", "test", "negative", frozenset({"complaint"}), True)
                for n in range(6)]
    steps = []
    train(examples, Settings(epochs=2, batch_size=2, checkpoints_averaged=1), log=lambda line: None,
          on_step=lambda step, total: steps.append((step, total)))
    assert steps == [(n, 6) for n in range(1, 7)]


@pytest.mark.slow  # loads the shipped model
def test_loading_the_transformer_says_so_and_when_it_is_done(caplog):
    from classifiers import load_transformer

    caplog.set_level(logging.INFO, logger="mentionwatch")
    classifier = load_transformer()
    assert classifier.classify(["Acme support never answers"])[0].sentiment == "negative"
    said = lines(caplog)
    assert said[0] == "loading the classifier…" and said[-1].startswith("loading the classifier: done in ")
