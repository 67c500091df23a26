"""The Slack receiver's registry entry. Slack is configured by the top-level `slack:` section (the
receiver named `slack`, every route's default); its sender is `alerts/slack.py` (claim / settle /
reconcile over the Web API), its rendering of the neutral message `alerts/slack_render.py`, and its
buttons `alerts/socket_mode.py`. It threads, edits sent messages and reads a channel back after an
unknown outcome, so its delivery is exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from alerts.receivers import Receiver
from alerts.slack import SlackSender, make_client
from monitor.config import SlackConfig
from monitor.config.receivers import SLACK
from monitor.store import Store


def slack_sender(configs: dict[str, SlackConfig], store: Store, clock: Callable[[], datetime]) -> SlackSender:
    """The one Slack app's sender: its client, and the channel budget that folds bursts into threads."""
    cfg = configs[SLACK]
    return SlackSender(make_client(cfg), store, clock, cfg.channel_messages_per_minute)


PLUGIN = Receiver(type="slack", config=SlackConfig, sender=slack_sender, threads=True, updates=True,
                  read_back=True, section=SLACK)
