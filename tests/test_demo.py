"""`mentionwatch demo`: prints what Slack received, exits 0 or (timed out) 1 with a clear message, and
leaves no temporary folder behind."""

from __future__ import annotations

import tempfile

import pytest

from monitor.demo import run_demo

pytestmark = pytest.mark.slow  # runs the real daemon against the emulators for several seconds


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_demo_prints_what_slack_received_and_cleans_up(temp_root, capsys):
    assert run_demo(classifier="lexicon") == 0
    out = capsys.readouterr().out
    assert "Slack messages" in out and "received by the emulator" in out and "finished in" in out
    assert "classifier lexicon-vader-1: pure Python" in out
    assert "eu-west" in out, "the Mastodon status pushed over the hashtag stream reached Slack"
    assert list(temp_root.iterdir()) == []


def test_a_demo_that_times_out_says_so_exits_1_and_still_shows_slack(temp_root, capsys):
    assert run_demo(classifier="lexicon", timeout=0.5) == 1
    out = capsys.readouterr().out
    assert "demo timed out" in out and "received by the emulator" in out
    assert list(temp_root.iterdir()) == []


def test_keep_leaves_the_folder_and_says_where(temp_root, capsys):
    assert run_demo(classifier="lexicon", keep=True) == 0
    kept = [path for path in temp_root.iterdir() if path.name.startswith("mentionwatch-demo-")]
    assert len(kept) == 1 and (kept[0] / "demo.db").is_file()
    assert f"files kept in {kept[0]}" in capsys.readouterr().out.replace("\n", "")
