"""Operating it like a service from a shell: --version, validated global logging options, JSON log
lines, the `run --once` summary line and `status` as a Nagios-style check (table at 80 columns, JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from emulators.feeds import render_rss
from emulators.server import Reply
from monitor.cli import STATUS_CRITICAL, STATUS_OK, STATUS_WARNING, status_verdict
from tests.support.config import config_dict, feed_source, write_config

MENTIONWATCH = str(Path(sys.executable).with_name("mentionwatch"))
SECRET = "xoxb-json-SECRET-51d0a2"
LONG = "fernweh-travel-reviews-and-complaints"
ITEMS = [{"id": "1", "title": "Acme Cloud lost my data", "link": "https://x.example.com/1",
          "description": "Terrible, Acme Cloud deleted my backups.", "author": "kim"}]


def mw(*args: str, env: dict | None = None, columns: int = 80) -> subprocess.CompletedProcess:
    return subprocess.run([MENTIONWATCH, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", "COLUMNS": str(columns), **(env or {})})


def test_version_and_validated_log_options():
    version = mw("--version")
    assert version.returncode == 0 and version.stdout.startswith("mentionwatch ")
    for args in (["--log-level", "verbose", "status"], ["run", "--log-level", "verbose"],
                 ["--log-format", "xml", "status"]):
        bad = mw(*args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
        assert "--log-level" in bad.stderr or "--log-format" in bad.stderr
    assert "'debug', 'info', 'warning', 'error'" in " ".join(mw("--log-level", "verbose", "status").stderr.replace("│", " ").split())


def test_json_log_lines_carry_the_source_and_no_secret(database, tmp_path, feeds, slack):
    feeds.fail("blog", Reply(404, f"not here {SECRET}".encode()), times=1)
    data = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))])
    data["slack"]["token"] = "${SLACK_BOT_TOKEN}"
    config = write_config(tmp_path, data)
    run = mw("--log-level", "debug", "--log-format", "json", "run", "--once", "--config", str(config),
             env={"SLACK_BOT_TOKEN": SECRET})
    assert run.returncode == 1, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len(run.stderr.splitlines())  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert datetime.fromisoformat(lines[0]["time"]).tzinfo is not None
    ours = [line for line in lines if line["logger"].startswith("mentionwatch.")]
    assert ours and all(line["level"] in ("debug", "info", "warning", "error") for line in lines)
    failed = [line for line in ours if line.get("source_id") == "acme/blog" and line["level"] == "error"]
    assert failed, "the failing poll's lines say which source"
    assert SECRET not in run.stderr + run.stdout


def test_json_log_lines_about_a_mention_carry_its_id(tmp_path, feeds, slack):
    feeds.set_feed("blog", render_rss("Blog", "https://x.example.com/", ITEMS))
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))]))
    assert mw("run", "--once", "--config", str(config)).returncode == 0
    for action in (["snooze", "1", "--for", "2h"], ["handled", "1"]):
        done = mw("--log-format", "json", *action, "--config", str(config))
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        about = [line for line in lines if line["message"].startswith("mention 1 ")]
        assert about and all(line["mention_id"] == 1 for line in about), lines


def test_run_once_prints_a_summary_line_and_keeps_its_exit_codes(database, tmp_path, feeds, slack):
    feeds.set_feed("blog", render_rss("Blog", "https://x.example.com/", ITEMS))
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [
        feed_source("blog", feeds.url_for("blog")), feed_source("gone", feeds.url_for("gone"))]))
    feeds.fail("gone", Reply(500, b"down"), times=5)
    run = mw("run", "--once", "--config", str(config))
    assert run.returncode == 1
    # two messages: the complaint, and the ops message saying the source broke
    assert run.stdout.strip().splitlines() == [
        "polled 2 source(s): 1 new mention(s), 2 Slack message(s) sent, 1 source(s) failed, 0 message(s) failed"]


def test_status_is_a_nagios_check_with_json_and_whole_names_at_80_columns(database, tmp_path, feeds, slack):
    feeds.set_feed(LONG, render_rss("Blog", "https://x.example.com/", ITEMS))
    feeds.fail("gone", Reply(500, b"down"), times=5)
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [
        feed_source(LONG, feeds.url_for(LONG)), feed_source("gone", feeds.url_for("gone"))]))
    assert mw("status", "--config", str(config)).returncode == STATUS_OK  # never polled: a fresh install is fine
    mw("run", "--once", "--config", str(config))

    table = mw("status", "--config", str(config))
    assert table.returncode == STATUS_WARNING
    assert max(map(len, table.stdout.splitlines())) <= 80
    assert "…" not in table.stdout
    first_column = "".join(line.split("│")[1].strip() for line in table.stdout.splitlines() if line.startswith("│"))
    assert f"acme/{LONG}" in first_column  # wrapped onto a second line, not cut
    assert "WARNING: acme/gone failing" in table.stdout

    report = mw("status", "--config", str(config), "--format", "json")
    assert report.returncode == STATUS_WARNING
    body = json.loads(report.stdout)
    assert body["status"] == "warning" and body["exit_code"] == 1
    states = {s["id"]: s["state"] for s in body["sources"]}
    assert states == {f"acme/{LONG}": "ok", "acme/gone": "failing", "slack": "ok"}
    assert body["outbox"]["waiting"] == 0 and body["outbox"]["states"] == {"sent": 2}


def test_status_verdict_disabled_and_stuck_are_critical():
    now = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    stuck = timedelta(minutes=15)
    assert status_verdict({"a": "ok", "slack": "ok"}, None, now, stuck) == (STATUS_OK, [])
    assert status_verdict({"a": "ok"}, now - timedelta(minutes=5), now, stuck) == (STATUS_OK, [])
    assert status_verdict({"a": "failing"}, None, now, stuck) == (STATUS_WARNING, ["a failing"])
    assert status_verdict({"a": "disabled", "b": "failing"}, None, now, stuck) == (
        STATUS_CRITICAL, ["a disabled", "b failing"])
    assert status_verdict({"a": "ok"}, now - timedelta(minutes=40), now, stuck) == (
        STATUS_CRITICAL, ["Slack outbox stuck for 40 min"])


def test_train_needs_data_and_never_overwrites_the_shipped_model_without_force(tmp_path):
    from classifiers.cli import training_output
    from classifiers.tokens import MODEL_DIR

    missing = mw("train")
    assert missing.returncode == 2 and "Missing option '--data'" in missing.stderr
    before = {p.name: p.stat().st_mtime_ns for p in MODEL_DIR.iterdir()}
    refused = mw("train", "--data", str(tmp_path), "--out", str(MODEL_DIR))
    said = " ".join(refused.stderr.replace("│", " ").split())  # rich wraps the error in a box at the terminal width
    assert refused.returncode == 2 and "--force" in said and "shipped model" in said
    assert {p.name: p.stat().st_mtime_ns for p in MODEL_DIR.iterdir()} == before
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "weights.bin").write_bytes(b"x")
    assert mw("train", "--data", str(tmp_path), "--out", str(tmp_path / "old")).returncode == 2
    default = training_output(None, False, now=0)
    assert default.name.startswith("mentionwatch-model-") and not default.exists()
    assert training_output(MODEL_DIR, True) == MODEL_DIR


def on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout stays a pipe): (exit code, stdout, what the terminal got)."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([MENTIONWATCH, *args], stdout=subprocess.PIPE, stderr=follower, text=True,
                            env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", "COLUMNS": "100", "TERM": "xterm"})
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the process closed its end
            break
        if not chunk:
            break
        screen += chunk
    out = proc.stdout.read()
    proc.wait(timeout=120)
    os.close(leader)
    return proc.returncode, out, screen.decode("utf-8", "replace")


def test_export_and_report_show_progress_on_a_terminal_only(tmp_path, feeds, slack):
    feeds.set_feed("blog", render_rss("Blog", "https://x.example.com/", ITEMS))
    config = str(write_config(tmp_path, config_dict(tmp_path, slack.api_url,
                                                    [feed_source("blog", feeds.url_for("blog"))])))
    assert mw("run", "--once", "--config", config).returncode == 0
    code, out, screen = on_a_terminal("export", "--config", config)
    assert code == 0 and json.loads(out)["brand"] == "acme", "stdout keeps the rows alone"
    assert "exporting mentions" in screen
    code, out, screen = on_a_terminal("report", "--format", "json", "--config", config)
    assert code == 0 and json.loads(out)[0]["brand"] == "acme" and "report" in screen
    for quiet in (["--quiet"], ["--log-format", "json"]):
        code, out, screen = on_a_terminal(*quiet, "export", "--config", config)
        assert code == 0 and "exporting mentions" not in screen
        assert all(line.startswith("{") for line in screen.splitlines() if line.strip()), screen
    piped = mw("export", "--config", config)
    assert piped.returncode == 0 and piped.stderr == "", "short work off a terminal says nothing"
