"""Mastodon requests per hour per instance at the default settings: an hour of polls (the source's
default interval, 2 min: 30 polls) by the real connector against the instance emulator, on a clock
moved by hand, counting what the instance answered.

Run: `python benchmarks/mastodon.py [--hours 1]`. Scenarios, each on a fresh instance:
1. one hashtag, quiet (nothing new);
2. one hashtag, busy (150 new statuses between polls: more than `max_pages` x 40 can take);
3. one hashtag, search for one name and the account's mention notifications (token), quiet;
4. one hashtag streamed (`streaming: true`), one new status pushed between polls;
5. one hashtag, quiet, with 20 mentions waiting for a team reply (status context reads).
An instance allows 300 requests per 5 minutes by default: 3,600 an hour.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors import mastodon_stream  # noqa: E402
from connectors.mastodon import Budgets, MastodonConnector, status_to_post  # noqa: E402
from emulators.mastodon import MastodonEmulator, status  # noqa: E402
from emulators.server import wait_until  # noqa: E402
from monitor.config import Settings  # noqa: E402

TOKEN = "benchmark-mastodon-token"
ALLOWED_PER_HOUR = 300 * 12


def connector(instance: MastodonEmulator, clock, **source) -> MastodonConnector:
    settings = Settings(slack={"token": "xoxb-x"}, mastodon={},
                        brands={"acme": {"names": ["Acme Cloud"], "hashtags": ["#acmecloud"], "slack_channel": "#a",
                                         "team": {"mastodon": ["@support@acme.social"]},
                                         "sources": [{"type": "mastodon", "name": "m", "instances": [instance.url],
                                                      **source}]}})
    return MastodonConnector(settings.brands["acme"].sources[0], settings, clock=clock, budgets=Budgets())


def an_hour(name: str, hours: float, source: dict, per_poll_new: int = 0, pushed: int = 0,
            waiting: int = 0) -> dict:
    """Polls at the source's interval for `hours` on a hand-moved clock; requests the instance answered."""
    with MastodonEmulator(token=TOKEN) as instance:
        now = [datetime.now(timezone.utc)]
        if source.get("search") or source.get("notifications"):
            source = {**source, "access_tokens": {instance.url: TOKEN}}
        mc = connector(instance, lambda: now[0], **source)
        interval = mc.source.interval
        next_id = 1
        instance.add("acmecloud", status(next_id, "<p>Acme Cloud hello</p>", created=now[0]))
        awaiting = [status_to_post(status(10_000_000 + i, f"<p>Acme Cloud question {i}</p>", acct="bob@far.example",
                                          created=now[0]), instance.url, frozenset()) for i in range(waiting)]
        instance.replies += [status(10_000_000 + i, f"<p>Acme Cloud question {i}</p>", acct="bob@far.example",
                                    created=now[0]) for i in range(waiting)]
        cursor, polls, read = None, int(hours * 3600 / interval.total_seconds()), 0
        for poll in range(polls):
            result = mc.fetch(cursor)
            cursor, read = result.cursor, read + len(result.posts)
            mc.find_team_replies(awaiting)
            if poll == 0 and source.get("streaming"):
                wait_until(lambda: bool(instance.stream_connects), timeout=10)
            now[0] += interval
            for _ in range(per_poll_new):
                next_id += 1
                instance.add("acmecloud", status(next_id, "<p>Acme Cloud busy</p>", created=now[0]))
            for _ in range(pushed):
                next_id += 1
                instance.push("acmecloud", status(next_id, "<p>Acme Cloud streamed</p>", created=now[0]))
            if pushed:
                time.sleep(0.05)  # the pushed status reaches the socket's buffer
        mastodon_stream.close_all()
        calls = [path for path, _ in instance.calls]
    kinds = {}
    for path in calls:
        kind = ("context" if path.endswith("/context") else path.rsplit("/", 1)[-1] if "timelines" not in path
                else "hashtag timeline")
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"name": name, "polls": polls, "requests": len(calls), "kinds": kinds, "hours": hours, "read": read,
            "posted": next_id}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    print(f"Mastodon requests per instance, {args.hours:g} h at the default interval (2 min), page size 40, "
          f"max_pages 3; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    rows = [
        an_hour("1. one hashtag, quiet", args.hours, {}),
        an_hour("2. one hashtag, 150 new per poll", args.hours, {}, per_poll_new=150),
        an_hour("3. hashtag + search (1 name) + mentions, quiet", args.hours,
                {"search": True, "notifications": True}),
        an_hour("4. one hashtag streamed, 1 pushed per poll", args.hours, {"streaming": True}, pushed=1),
        an_hour("5. one hashtag, quiet, 20 mentions awaiting a reply", args.hours, {}, waiting=20),
    ]
    print(f"  {'scenario':<52} {'polls':>5} {'read/posted':>11} {'requests/h':>10} {'of allowed':>10}  by kind")
    for row in rows:
        per_hour = row["requests"] / row["hours"]
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(row["kinds"].items()))
        share = per_hour / ALLOWED_PER_HOUR
        print(f"  {row['name']:<52} {row['polls']:>5} {row['read']:>5}/{row['posted']:<5} {per_hour:>10,.0f} "
              f"{share:>10.1%}  {kinds}")


if __name__ == "__main__":
    main()
