"""Spike detection as pure functions: the last hour of a brand against a robust baseline.

The baseline is the median and MAD of the same hour of the week over the history (falling back to
every hour when the history holds too few of those). Median and MAD, unlike mean and standard
deviation, are not dragged up by the previous spike. Floors keep a quiet brand quiet: one extra
mention on a brand that usually has none is a large ratio but not a spike.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Sequence

from alerts.messages import SECTION_LIMIT, escape, fit, safe_link, shown
from monitor.config import SpikeConfig

HOUR = timedelta(hours=1)
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
MIN_SAME_HOUR_SAMPLES = 2
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class HourCount:
    """Mentions in the hour that ends `hours_ago` hours before now (0 is the last hour)."""

    hours_ago: int
    total: int
    negative: int


@dataclass(frozen=True)
class Baseline:
    median: float
    mad: float
    negative_share: float
    samples: int

    def scale(self) -> float:
        """MAD-based spread, never below the Poisson noise of the median (or 1) so that a flat history is not
        a zero-width baseline that any wobble exceeds."""
        return max(MAD_TO_SIGMA * self.mad, self.median ** 0.5, 1.0)


@dataclass(frozen=True)
class Signal:
    metric: Literal["volume", "negative"]
    count: int  # mentions (volume) or negative mentions (negative) in the last hour
    total: int
    negative: int
    usual: float  # the baseline median of the same metric
    z: float
    negative_share: float
    usual_negative_share: float

    @property
    def ratio(self) -> float:
        return self.count / self.usual if self.usual else float(self.count)


def baseline(history: Sequence[HourCount], metric: str) -> Baseline:
    """Same hour of the week (168 h apart from the last hour) when there are enough, else every hour."""
    same_hour = [h for h in history if h.hours_ago > 0 and h.hours_ago % 168 == 0]
    samples = same_hour if len(same_hour) >= MIN_SAME_HOUR_SAMPLES else [h for h in history if h.hours_ago > 0]
    values = [h.negative if metric == "negative" else h.total for h in samples] or [0]
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    total = sum(h.total for h in samples)
    share = sum(h.negative for h in samples) / total if total else 0.0
    return Baseline(float(median), float(mad), share, len(samples))


def detect(history: Sequence[HourCount], config: SpikeConfig) -> Signal | None:
    """The spike in the last hour (hours_ago == 0), volume first, or None.

    None too while the brand's oldest mention in the history is younger than `min_history`: without a
    usual level, a new install's first busy hour is not a spike.
    """
    known = max((h.hours_ago for h in history if h.total), default=0)
    if timedelta(hours=known) < config.min_history:
        return None
    last = next((h for h in history if h.hours_ago == 0), HourCount(0, 0, 0))
    share = last.negative / last.total if last.total else 0.0
    for metric in ("volume", "negative"):
        base = baseline(history, metric)
        count = last.negative if metric == "negative" else last.total
        z = (count - base.median) / base.scale()
        if count < config.min_mentions or z < config.z_threshold or count < config.min_ratio * base.median:
            continue
        if metric == "negative" and share < base.negative_share + config.negative_share_rise:
            continue
        return Signal(metric, count, last.total, last.negative, base.median, z, share, base.negative_share)
    return None


@dataclass(frozen=True)
class SpikeStep:
    action: Literal["none", "start", "calm", "stirred", "end"]
    calm_since: datetime | None = None


def step(active: dict | None, signal: Signal | None, now: datetime, config: SpikeConfig) -> SpikeStep:
    """What to do with a brand's spike state given this hour's signal.

    `active` is the stored active spike (with `calm_since`). A spike ends after `calm_for` without a
    signal; a signal during the calm resets it.
    """
    if active is None:
        return SpikeStep("start") if signal is not None else SpikeStep("none")
    calm_since = active.get("calm_since")
    if signal is not None:
        return SpikeStep("stirred") if calm_since is not None else SpikeStep("none")
    if calm_since is None:
        return SpikeStep("calm", now)
    if now - calm_since >= config.calm_for:
        return SpikeStep("end", calm_since)
    return SpikeStep("none", calm_since)


def spike_message(brand_name: str, signal: Signal, drivers: Sequence[dict], dominant_intent: str | None) -> dict:
    """The alert when a spike starts: how big the jump is, what drives it (escaped, linked), its main intent."""
    what = "negative mentions" if signal.metric == "negative" else "mentions"
    headline = fit(f":rotating_light: Spike for {escape(brand_name)}: {signal.count} {what} in the last hour, "
                   f"{signal.ratio:.0f}× the usual {signal.usual:g}", SECTION_LIMIT)
    facts = f"negative share {signal.negative_share:.0%} (usually {signal.usual_negative_share:.0%})"
    if dominant_intent:
        facts += f" · mostly *{dominant_intent}*"
    lines = [f"• {safe_link(d.get('url'), d.get('title') or _who(d))}: "
             f"{shown(d.get('text') or '', EXCERPT_CHARS)}"
             + (f" (reach {d['reach']:,})" if d.get("reach") else "") for d in drivers]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": headline}},
              {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": facts}]}]
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                                   "text": fit("\n".join(lines), SECTION_LIMIT)}})
    return {"text": headline, "blocks": blocks}


def spike_over_message(brand_name: str, started_at: datetime, ended_at: datetime) -> dict:
    minutes = int((ended_at - started_at).total_seconds() // 60)
    text = fit(f":white_check_mark: The spike for {escape(brand_name)} is over "
               f"(started {started_at:%Y-%m-%d %H:%M} UTC, lasted {minutes // 60} h {minutes % 60} min).", SECTION_LIMIT)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": text}}]}


def _who(mention: dict) -> str:
    return f"{mention.get('author') or 'someone'} on {mention.get('source')}"
