"""Reddit configs against the Reddit emulator."""

from __future__ import annotations

from datetime import datetime, timezone

from emulators.reddit import RedditEmulator
from tests.support.config import config_dict, pipeline_with_clock

SECRET = "reddit-SECRET-9d2c41"
TEAM = "AcmeCloud_Support"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def platform(emu: RedditEmulator, **overrides) -> dict:
    return {"client_id": emu.client_id, "client_secret": emu.client_secret, "oauth_url": emu.url,
            "reddit_url": emu.url, "timeout": "2s", "max_wait": "1s", **overrides}


def posts_source(name: str = "posts", *subs: str, **extra) -> dict:
    return {"type": "reddit", "name": name, "what": "posts", "subreddits": list(subs or ["acme"]),
            "interval": "1s", **extra}


def pipeline_for(tmp_path, emu, slack, sources: list[dict], **overrides):
    config = config_dict(tmp_path, slack.api_url, sources, reddit=platform(emu, **overrides))
    config["brands"]["acme"]["team"] = {"reddit": [TEAM]}
    return pipeline_with_clock(tmp_path, config, NOW)
