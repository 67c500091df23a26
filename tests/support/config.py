"""Configs pointing at the loopback emulators, and alert payloads as the router builds them."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from alerts.messages import MessageItem, group_header
from alerts.neutral import alert_message
from alerts.slack_render import render
from monitor.core.labels import Labels

REPO = Path(__file__).resolve().parent.parent.parent
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
TOKEN = "xoxb-test-token-4f8a9c"


def fixture_bytes(relative: str) -> bytes:
    return (SHARED_FIXTURES / relative).read_bytes()


def store_url(tmp_path: Path) -> str:
    """The database of the test: the `database` fixture's (either backend) when the test asked for it, else SQLite."""
    return os.environ.get("MENTIONWATCH_TEST_STORE_URL") or f"sqlite:///{tmp_path / 'mw.db'}"


def config_dict(tmp_path: Path, slack_url: str, sources: list[dict], **overrides) -> dict:
    config = {
        "storage": {"url": store_url(tmp_path)},
        "slack": {"token": TOKEN, "base_url": slack_url, "timeout": "2s"},
        "feeds": {"connect_timeout": "1s", "read_timeout": "1s"},
        "daemon": {"process_interval": "1s", "shutdown_grace": "2s"},
        # One message per mention, at once: what these tests assert; grouping has its own tests.
        "routes": {"group_wait": "0s", "group_by": ["mention"]},
        "brands": {"acme": {"names": ["Acme Cloud", "Acme"], "handles": ["@acmecloud"], "domains": ["acme.io"],
                            "exclude": ["acme anvil"], "slack_channel": "#acme-alerts", "sources": sources}},
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def feed_source(name: str, url: str, **extra) -> dict:
    return {"type": "feed", "name": name, "url": url, "interval": "1s", **extra}


def pipeline_with_clock(tmp_path: Path, config: dict, now):
    """A pipeline over `config` whose clock the test moves by hand: returns pipeline, store, clock."""
    from alerts.receivers import receiver_types
    from monitor.config import load_settings
    from monitor.daemon import build_pipeline
    from monitor.store import Store

    settings, _ = load_settings(write_config(tmp_path, config), receiver_types=receiver_types())
    clock = [now]
    pipeline = build_pipeline(settings, Store(settings.storage.url))
    pipeline.clock = lambda: clock[0]
    return pipeline, pipeline.store, clock


def alert_payload(mention_id: int, text: str, labels: Labels, *, url: str | None = None, title: str | None = None,
                  author: str | None = None, reach: int | None = None, reply_by=None, brand_name: str = "Acme",
                  source: str = "acme/blog") -> dict:
    """A one-complaint alert message exactly as Slack shows the router's, for tests that fill the outbox."""
    item = MessageItem(mention_id=mention_id, reason="Complaint", brand_name=brand_name, source=source, url=url,
                       title=title, text=text, author=author, reach=reach, labels=labels, reply_by=reply_by)
    return render(alert_message([item], group_header([item]), "", "", None).to_json())
