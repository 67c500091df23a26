"""The trends stage of the process job: spike alerts and weekly digests, each queued in the outbox.

Decisions are the pure functions of alerts.spikes and alerts.digest; this module reads their
inputs from the store and commits their outcome with the outbox row in one transaction. It runs at
most once per CHECK_EVERY, because hourly windows change slowly and the counts cost a query per brand.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from alerts.digest import WeekNumbers, digest_due, digest_payload, week_bounds
from alerts.spikes import HOUR, detect, spike_message, spike_over_message, step
from monitor.config import Brand, Settings
from monitor.report import BrandReport, counts
from monitor.responses import response_stats
from monitor.core.records import NewAlert
from monitor.store import Store
from monitor.core.logs import get_logger

log = get_logger(__name__)
CHECK_EVERY = timedelta(minutes=1)
DRIVERS = 3


class Trends:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self._last_run: datetime | None = None
        self._failing: set[str] = set()  # "spike:<brand>" / "digest:<brand>" whose last run failed

    def run(self, now: datetime) -> None:
        """Never lets a failure here stop classification, routing or delivery: logged once, retried next run."""
        if self._last_run is not None and now - self._last_run < CHECK_EVERY:
            return
        self._last_run = now
        for brand_id, brand in self.settings.brands.items():
            if brand.spikes.enabled:
                self._guard(f"spike:{brand_id}", self.check_spike, brand_id, brand, now)
            if brand.digest.enabled:
                self._guard(f"digest:{brand_id}", self.send_digest, brand_id, brand, now)

    def _guard(self, key: str, job, *args) -> None:
        try:
            job(*args)
        except Exception:
            if key not in self._failing:
                log.exception("%s failed; retrying every minute", key)
            self._failing.add(key)
            return
        if key in self._failing:
            self._failing.discard(key)
            log.info("%s works again", key)

    # --- spikes --------------------------------------------------------------------------------

    def check_spike(self, brand_id: str, brand: Brand, now: datetime) -> None:
        config = brand.spikes
        signal = detect(self.store.hourly_counts(brand_id, now, config.baseline), config)
        active = self.store.active_spike(brand_id)
        decision = step(active, signal, now, config)
        if decision.action == "start":
            hour = counts(self.store, [brand_id], now - HOUR, now, None)[brand_id].get("total")
            intent = hour.intents.most_common(1)[0][0] if hour and hour.intents else None
            drivers = self.store.top_mentions(brand_id, now - HOUR, now, limit=DRIVERS,
                                              sentiment="negative" if signal.metric == "negative" else None)
            alert = NewAlert(f"spike:{brand_id}:{now.isoformat()}", "spike", None, brand_id, brand.slack_channel,
                             spike_message(brand.names[0], signal, drivers, intent))
            details = {"count": signal.count, "usual": signal.usual, "z": round(signal.z, 2), "intent": intent,
                       "negative_share": signal.negative_share}
            if self.store.start_spike(brand_id, signal.metric, details, alert, now) is not None:
                log.warning("spike for %s: %d %s in the last hour, usually %g", brand_id, signal.count,
                            signal.metric, signal.usual)
        elif decision.action in ("calm", "stirred"):
            self.store.set_spike_calm(active["id"], decision.calm_since)
        elif decision.action == "end":
            alert = NewAlert(f"spike-over:{active['id']}", "spike_over", None, brand_id, brand.slack_channel,
                             spike_over_message(brand.names[0], active["started_at"], now),
                             thread_of=active["alert_id"])
            if self.store.end_spike(active["id"], alert, now):
                log.info("spike for %s is over", brand_id)

    # --- the weekly digest ---------------------------------------------------------------------

    def send_digest(self, brand_id: str, brand: Brand, now: datetime) -> None:
        config = brand.digest
        week = digest_due(config, now, self.store.last_digest_week(brand_id))
        if week is None:
            return
        start, end = week_bounds(week, config.timezone)
        this, before = self._week_numbers(brand_id, start, end, now)
        if this.volume == 0 and before.volume == 0:
            return  # nothing to report yet (a new install); checked again next run, cheaply
        from monitor.chart import sentiment_chart  # matplotlib loads once a week, not at every daemon start

        since = end - timedelta(weeks=config.chart_weeks)
        weeks = counts(self.store, [brand_id], since, end, "week")[brand_id]
        report = BrandReport(brand_id, brand.names[0], since, end, "week",  # the chart's part of a report
                             sorted(weeks.values(), key=lambda p: p.period), terms=[], complaints_read=0)
        payload = digest_payload(
            brand_id=brand_id, brand_name=brand.names[0], week=week, this=this, before=before,
            complaints=self.store.top_mentions(brand_id, start, end, intent="complaint", limit=3),
            praise=next(iter(self.store.top_mentions(brand_id, start, end, intent="praise", limit=1)), None),
            chart_png_b64=base64.b64encode(sentiment_chart(report)).decode())
        alert = NewAlert(f"digest:{brand_id}:{week}", "digest", None, brand_id,
                         config.channel or brand.slack_channel, payload, op="upload")
        if self.store.commit_digest(brand_id, week, alert, now):
            log.info("weekly digest for %s, %s, queued", brand_id, week)

    def _week_numbers(self, brand_id: str, start: datetime, end: datetime,
                      now: datetime) -> tuple[WeekNumbers, WeekNumbers]:
        """This week and the week before: mentions by their time, answers by when their clock started."""
        week_before = start - (end - start)
        out = []
        for since, until in ((start, end), (week_before, start)):
            total = counts(self.store, [brand_id], since, until, None)[brand_id].get("total")
            replies = response_stats(self.store, self.settings, brand=brand_id, since=since, until=until, now=now)
            out.append(WeekNumbers(total.volume if total else 0, total.net if total else None,
                                   total.intents["complaint"] if total else 0,
                                   answered=sum(s.answered for s in replies),
                                   needing_reply=sum(s.needing_reply for s in replies),
                                   median_reply=_overall_median(replies)))
        return out[0], out[1]


def _overall_median(stats: list) -> timedelta | None:
    """Across sources: the per-source median at the middle answer when sorted (exact with one source)."""
    weighted = sorted((s.median, s.answered) for s in stats if s.median is not None)
    half = sum(n for _, n in weighted) / 2
    running = 0
    for median, answered in weighted:
        running += answered
        if running >= half:
            return median
    return None
