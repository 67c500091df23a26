"""The command line a team uses: run --once, export, status, and secrets kept out of every output."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.feeds import render_rss
from tests.support.config import config_dict, feed_source, write_config

MENTIONWATCH = str(Path(sys.executable).with_name("mentionwatch"))
SECRET = "xoxb-invalid-SECRET-7f3e9d"
ITEMS = [
    {"id": "1", "title": "Acme Cloud lost my data", "link": "https://x.example.com/1",
     "description": "Terrible, Acme Cloud deleted my backups and support is silent.", "author": "kim"},
    {"id": "2", "title": "Acme Cloud is great", "link": "https://x.example.com/2",
     "description": "Love the new dashboard, thank you Acme.", "author": "lee"},
    {"id": "3", "title": "Unrelated", "link": "https://x.example.com/3", "description": "Nothing here."},
]


def mw(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([MENTIONWATCH, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", **(env or {})})


def test_run_once_then_export_and_status(tmp_path, feeds, slack):
    feeds.set_feed("blog", render_rss("Blog", "https://x.example.com/", ITEMS))
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))]))
    assert mw("run", "--once", "--config", str(config)).returncode == 0
    assert len(slack.posted()) == 1

    lines = [json.loads(line) for line in mw("export", "--config", str(config)).stdout.splitlines()]
    assert [row["title"] for row in lines] == ["Acme Cloud lost my data", "Acme Cloud is great"]
    first = lines[0]
    assert first["brand"] == "acme" and first["url"] == "https://x.example.com/1" and first["author"] == "kim"
    assert first["sentiment"] == "negative" and first["alert_state"] == "sent"
    assert lines[1]["sentiment"] == "positive" and lines[1]["alert_state"] is None

    rows = list(csv.DictReader(io.StringIO(mw("export", "--config", str(config), "--format", "csv").stdout)))
    assert len(rows) == 2 and rows[0]["source"] == "feed"
    assert mw("export", "--config", str(config), "--since", "2999-01-01").stdout == ""

    status = mw("status", "--config", str(config)).stdout
    assert "acme/blog" in status and "ok" in status and "no_match 1" in status


def test_secrets_never_appear_in_logs_or_errors(tmp_path, feeds, slack):
    feeds.set_feed("blog", render_rss("Blog", "https://x.example.com/", ITEMS))
    config_data = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))])
    config_data["slack"]["token"] = "${SLACK_BOT_TOKEN}"
    config = write_config(tmp_path, config_data)
    env = {"SLACK_BOT_TOKEN": SECRET}
    run = mw("run", "--once", "--log-level", "DEBUG", "--config", str(config), env=env)
    assert run.returncode == 2  # Slack refused the token: delivery stopped, the alert stays queued
    assert "invalid_auth" in run.stderr  # the failure is reported...
    assert SECRET not in run.stdout + run.stderr  # ...without the token
    config_data["slack"]["timeout"] = "soon"
    write_config(tmp_path, config_data)
    bad = mw("validate", str(config), env=env)
    assert bad.returncode == 78 and "slack.timeout" in bad.stderr
    assert SECRET not in bad.stdout + bad.stderr
    leaked = mw("export", "--config", str(config), env=env)
    assert SECRET not in leaked.stdout + leaked.stderr


@pytest.mark.slow
def test_status_shows_the_classifier_the_daemon_loaded(tmp_path, feeds, slack):
    """status is another process: it reads what the daemon recorded when it loaded its classifier."""
    feeds.set_feed("blog", render_rss("Blog", "https://x.example.com/", ITEMS))
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))],
                                                classifier={"kind": "transformer"}))
    assert "Classifier: not loaded yet" in mw("status", "--config", str(config)).stdout
    run = mw("run", "--once", "--config", str(config))
    assert run.returncode == 0
    logged = [line for line in run.stderr.splitlines() if "classifier minilm-mt" in line]
    assert len(logged) == 1 and " on " in logged[0]
    runtime = logged[0].split("classifier ", 1)[1]
    status = " ".join(mw("status", "--config", str(config)).stdout.split())
    assert f"Classifier: {runtime} (loaded " in status
