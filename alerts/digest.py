"""The weekly digest: when it is due (a pure function of the schedule and now) and what it says.

The digest is about the ISO week that just finished in the brand's time zone. It becomes due at
the configured weekday and time and stays due for the rest of that week, so a daemon that was down
on Monday morning sends it when it comes back; the next week it is a different week's digest, never
a late duplicate. The store's digests table (brand, week) makes it once per week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from alerts.messages import SECTION_LIMIT, escape, fit, net_text, safe_link, shown
from monitor.config import WEEKDAYS, DigestConfig

EXCERPT_CHARS = 200


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def digest_due(schedule: DigestConfig, now: datetime, last_week_sent: str | None) -> str | None:
    """The ISO week whose digest is due now (the week just finished), or None."""
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    send_at = datetime.combine(monday + timedelta(days=WEEKDAYS.index(schedule.day)), schedule.at, tzinfo=zone)
    if local < send_at:
        return None
    week = iso_week(monday - timedelta(days=7))
    return week if last_week_sent is None or last_week_sent < week else None


def week_bounds(week: str, timezone: str) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) of an ISO week in the brand's time zone."""
    year, number = week.split("-W")
    start = datetime.combine(date.fromisocalendar(int(year), int(number), 1), datetime.min.time(),
                             tzinfo=ZoneInfo(timezone))
    return start, datetime.combine(start.date() + timedelta(days=7), datetime.min.time(), tzinfo=start.tzinfo)


@dataclass(frozen=True)
class WeekNumbers:
    volume: int
    net: float | None  # (positive - negative) / labelled
    complaints: int
    answered: int
    needing_reply: int
    median_reply: timedelta | None


def _change(now: float, before: float) -> str:
    if before == 0:
        return "new" if now else "="
    ratio = (now - before) / before
    return f"{'▲' if ratio > 0 else '▼' if ratio < 0 else '='} {abs(ratio):.0%}"


def _minutes(value: timedelta | None) -> str:
    if value is None:
        return "–"
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _mention_line(mention: dict) -> str:
    label = mention.get("title") or f"{mention.get('author') or 'someone'} on {mention.get('source')}"
    excerpt = shown(mention.get("text") or "", EXCERPT_CHARS)
    reach = f" (reach {mention['reach']:,})" if mention.get("reach") is not None else ""
    return f"• {safe_link(mention.get('url'), label)}{reach}: {excerpt}"


def digest_payload(*, brand_id: str, brand_name: str, week: str, this: WeekNumbers, before: WeekNumbers,
                   complaints: Sequence[dict], praise: dict | None, chart_png_b64: str) -> dict:
    """The `upload` outbox row's payload: the chart, with the week's numbers as its comment."""
    name = escape(brand_name)
    lines = [
        f"*Weekly digest for {name}, {week}* (numbers against the week before)",
        f"• Mentions: *{this.volume}* ({_change(this.volume, before.volume)}, was {before.volume})",
        f"• Net sentiment: *{net_text(this.net)}* (was {net_text(before.net)})",
        f"• Complaints: *{this.complaints}* ({_change(this.complaints, before.complaints)}, was {before.complaints})",
        f"• Answered: *{this.answered}* of {this.needing_reply} needing a reply, median {_minutes(this.median_reply)} "
        f"(was {before.answered} of {before.needing_reply}, median {_minutes(before.median_reply)})",
    ]
    if complaints:
        lines += ["", "*Most-engaged complaints*", *(_mention_line(m) for m in complaints)]
    if praise:
        lines += ["", "*Best praise*", _mention_line(praise)]
    return {"text": fit("\n".join(lines), SECTION_LIMIT), "filename": f"{brand_id}-{week}.png",
            "title": f"{brand_name}: sentiment and volume up to {week}", "content_b64": chart_png_b64}
