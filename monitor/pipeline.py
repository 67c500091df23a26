"""The stages between a connector and the receivers (Slack, webhooks), each one idempotent and committed
on its own.

poll: fetch -> match -> store (mentions and cursor in one transaction)
process: classify stored mentions -> route them to outbox rows -> deliver the outbox (every receiver)
A crash between any two stages leaves work that the next run picks up; nothing is done twice.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable

from alerts.crossposts import CROSSPOST_WINDOW, attached, link_update, text_key, twin_of
from alerts.grouping import due_at, flush_mode
from alerts.routes import route_at
from alerts.rules import group_messages, kudos_notifications, needs_human, route_mention, source_health_alert
from alerts.silences import silencing
from alerts.receivers import DeliveryReport, Receivers
from classifiers.base import Classifier
from monitor.core.labels import Labels
from classifiers.lexicon import LexiconClassifier
from connectors.registry import make_connector
from monitor.config import Settings
from monitor.config.receivers import SLACK
from monitor.backfill import Backfill
from monitor.core.clock import Clock, utcnow
from monitor.core.failures import FailureKind, SourceFailure
from monitor.health import SourceHealth, after_failure, after_success
from monitor.matcher import Matcher
from monitor.core.records import Crosspost, Match, NewAlert, Post, TeamReply
from monitor.query import facts_of, kept_after_labels
from monitor.store import Store
from monitor.trends import Trends
from monitor.tracker import UnansweredTracker
from monitor.core.logs import get_logger, log_context
from monitor.core.progress import Progress

log = get_logger(__name__)
REPLY_LOOKBACK = timedelta(days=7)  # stored mentions older than this are no longer checked for team replies


def backfill_before(first_poll: bool, last_success: datetime | None, older_than: timedelta, outage: timedelta,
                    now: datetime) -> datetime | None:
    """Posts created before this moment are backfill (history, summarised per brand instead of alerted
    one by one): on a source's first poll and on the first poll after an outage longer than `outage`.
    What is younger than `older_than` is news, alerted as usual, even on a first poll (and so is an
    undated post: nothing says it is old)."""
    if first_poll or (last_success is not None and now - last_success > outage):
        return now - older_than
    return None


@dataclass(frozen=True)
class Stage:
    """One step of `Pipeline.process`: `run(now, flush_all)`, skipped when `off` says why."""

    name: str
    run: Callable[[datetime, bool], object]
    off: str | None = None


@dataclass
class PollOutcome:
    source_id: str
    fetched: int = 0
    new_ids: list[int] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    failure: SourceFailure | None = None
    deferred_until: datetime | None = None


PARSE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError, OverflowError,
                UnicodeError)


def classify_exception(exc: Exception, source_id: str) -> SourceFailure:
    """A connector's exception as a classified failure: its own SourceFailure, a parse error of the
    platform's answer as BAD_PAYLOAD, anything else as UNAVAILABLE; so health, status and the
    daemon's retry timing always know about it, and nothing is "failed unexpectedly"."""
    if isinstance(exc, SourceFailure):
        return exc
    # The exception's text may quote the platform's answer: only at DEBUG, with its traceback.
    log.debug("source %s: %s while reading its answer", source_id, type(exc).__name__, exc_info=exc)
    if isinstance(exc, PARSE_ERRORS):
        return SourceFailure(FailureKind.BAD_PAYLOAD, f"source {source_id}: unreadable answer ({type(exc).__name__})")
    return SourceFailure(FailureKind.UNAVAILABLE, f"source {source_id}: {type(exc).__name__}")


class Pipeline:
    def __init__(self, settings: Settings, store: Store, classifier: Classifier, clock: Clock = utcnow):
        self.settings = settings
        self.store = store
        self.classifier = classifier
        self.clock = clock
        # every receiver, Slack included, from the registry; their senders read the pipeline's clock too
        self.receivers = Receivers(settings, store, lambda: self.clock())
        self.matcher = Matcher.from_settings(settings)
        self.sources = settings.sources()
        # every connector reads the pipeline's clock (through it, so a clock swapped later reaches them too)
        self._connectors = {sid: make_connector(src, settings, store, clock=lambda: self.clock())
                            for sid, (_, src) in self.sources.items()}
        self._fallback = LexiconClassifier()
        self.tracker = UnansweredTracker(settings, store)
        self.trends = Trends(settings, store)
        self.backfill = Backfill(settings, store)
        self._disabled: set[str] = set()  # sources whose credentials kept failing, until reload/restart
        self.on_classified: Callable[[int, float], None] = lambda size, seconds: None  # for /metrics
        self.stages = self._stages()

    def _stages(self) -> list[Stage]:
        """What `process` does after labelling a batch, in this order (before the outbox is drained)."""
        brands = self.settings.brands.values()
        trends_off = None if any(b.spikes.enabled or b.digest.enabled for b in brands) else \
            "no brand has spikes or a weekly digest enabled"
        return [
            # before routing, so a new spike's negative mentions fold into its thread
            Stage("trends", lambda now, flush_all: self.trends.run(now), trends_off),
            # a brand's backlog (first run, long outage): one summary, not an alert each
            Stage("backfill", lambda now, flush_all: self.backfill.run(now, force=flush_all)),
            Stage("route", lambda now, flush_all: self._route_all()),
            Stage("reply clock", lambda now, flush_all: self.tracker.tick(now)),
            Stage("flush", lambda now, flush_all: self.flush_groups(force=flush_all)),
        ]

    def describe(self) -> str:
        """The stages in order, which are on and why one is off: logged once when the daemon starts."""
        steps = [f"classify ({self.classifier.version})"]
        steps += [stage.name if stage.off is None else f"{stage.name} (off: {stage.off})" for stage in self.stages]
        return " -> ".join(steps + ["deliver"])

    # --- poll ----------------------------------------------------------------------------------

    def poll(self, source_id: str) -> PollOutcome:
        with log_context(source_id=source_id):
            return self._poll(source_id)

    def _poll(self, source_id: str) -> PollOutcome:
        brand_id, source = self.sources[source_id]
        outcome = PollOutcome(source_id)
        now = self.clock()
        if source_id in self._disabled:
            return outcome
        health = self.store.get_health(source_id)
        if health.retry_at and health.retry_at > now:
            outcome.deferred_until = health.retry_at
            return outcome
        cursor = self.store.get_cursor(source_id)
        try:
            result = self._connectors[source_id].fetch(cursor)
        except Exception as exc:  # noqa: BLE001 - every failure of a poll is classified, never "unexpected"
            return self._failed(outcome, brand_id, source, health, classify_exception(exc, source_id), now)
        for warning in result.warnings:
            log.warning("source %s: %s", source_id, warning)
        if result.skipped:
            outcome.dropped["malformed"] += len(result.skipped)
            log.warning("source %s: skipped %d malformed item(s): %s", source_id, len(result.skipped),
                        "; ".join(item[:120] for item in result.skipped[:5]) + ("; …" if len(result.skipped) > 5 else ""))
        backfill = backfill_before(cursor is None, health.last_success_at, self.settings.daemon.backfill_older_than,
                                   self.settings.daemon.backfill_after, now)
        found = []
        for post in result.posts:
            match, reason = self.matcher.match(post.searchable, facts_of(post, source_id),
                                               None if source.require_match else brand_id)
            if match is None:
                outcome.dropped[reason] += 1
                continue
            if match.after_labels:  # decided once labelled (route_pending); kept with the mention
                post = replace(post, extra={**post.extra, "after_labels": match.after_labels})
            if backfill is not None and post.created_at is not None and post.created_at < backfill:
                post = replace(post, extra={**post.extra, "backfill": True})
            found.append((post, match))
        outcome.fetched = len(result.posts)
        found = self._enrich(source_id, found)
        # The team-reply check runs before the commit: what routing finds stored was checked already,
        # and a mention the team answered before we saw it is stored answered.
        try:
            replies = self._team_replies(source_id, [post for post, _ in found], now)
        except Exception as exc:  # noqa: BLE001 - classified like the poll itself
            outcome.new_ids = self.store.commit_poll(source_id, found, result.cursor, outcome.dropped, now,
                                                     result.gaps, deleted=[(source.type, d) for d in result.deleted])
            return self._failed(outcome, brand_id, source, health, classify_exception(exc, source_id), now)
        outcome.new_ids = self.store.commit_poll(source_id, found, result.cursor, outcome.dropped, now, result.gaps,
                                                 replies, [(source.type, d) for d in result.deleted])
        for reply in replies:
            log.info("%s mention %s answered by %s", reply.source, reply.external_id, reply.responder)
        new_health, transition = after_success(health, now)
        self.store.save_health(new_health, self._health_alert(brand_id, health, transition))
        if transition:
            log.info("source %s recovered (was %s since %s)", source_id, health.kind,
                     health.since.isoformat() if health.since else "?")
        if backfill is not None and outcome.new_ids:
            log.info("source %s: %s, %d new mention(s); those published before %s are backfill", source_id,
                     "first poll" if cursor is None else "first poll after an outage", len(outcome.new_ids),
                     f"{backfill:%Y-%m-%d %H:%M} UTC")
        log.debug("source %s: %d fetched, %d new, dropped %s", source_id, outcome.fetched,
                  len(outcome.new_ids), dict(outcome.dropped))
        return outcome

    def _failed(self, outcome: PollOutcome, brand_id: str, source, health: SourceHealth, failure: SourceFailure,
                now: datetime) -> PollOutcome:
        outcome.failure = failure
        new_health, transition = after_failure(health, failure, source.interval, now)
        self.store.save_health(new_health, self._health_alert(brand_id, new_health, transition))
        if new_health.state == "disabled":
            self._disabled.add(outcome.source_id)
        if transition and new_health.state == "disabled":
            log.error("source %s disabled: %s; fix its credentials, then reload (SIGHUP) or restart",
                      outcome.source_id, failure.message)
        elif transition:
            log.error("source %s is failing (%s): %s", outcome.source_id, failure.kind.value, failure.message)
        outcome.deferred_until = new_health.retry_at
        return outcome

    def _enrich(self, source_id: str, found: list[tuple[Post, Match]]) -> list[tuple[Post, Match]]:
        """What a connector only looks up for posts that matched (Bluesky: the author's handle and reach)."""
        enrich = getattr(self._connectors[source_id], "enrich", None)
        if enrich is None or not found:
            return found
        try:
            posts = enrich([post for post, _ in found])
        except Exception:  # noqa: BLE001 - a failed lookup must not cost the poll its mentions
            log.exception("source %s: looking up the matched posts' details failed; stored without them", source_id)
            return found
        return list(zip(posts, (match for _, match in found)))

    def _team_replies(self, source_id: str, posts: list[Post], now: datetime) -> list[TeamReply]:
        """Team answers to this poll's posts and to the source's stored mentions still waiting for one:
        the connector reads the team accounts' own replies once for all of them, within its budgets."""
        finder = getattr(self._connectors[source_id], "find_team_replies", None)
        if finder is None:
            return []
        waiting = self.store.reply_candidates(source_id, self.sources[source_id][0], now - REPLY_LOOKBACK)
        known = {m.external_id for m in waiting}
        return finder(waiting + [p for p in posts if p.external_id not in known])

    def _health_alert(self, brand_id: str, health: SourceHealth, transition: str | None) -> NewAlert | None:
        """Slack hears when a source breaks and when it recovers, not about every failure between."""
        if transition not in ("broke", "recovered"):
            return None
        return source_health_alert(health.source_id, brand_id, transition, health.kind, health.message,
                                   health.since or self.clock(), self.settings)

    # --- process -------------------------------------------------------------------------------

    def classify_pending(self, batches: int = 8) -> int:
        """Label up to `batches` classifier batches of stored mentions; returns how many were labelled. On
        PostgreSQL every node may do this at once: each takes a batch nobody else is labelling."""
        batch = self.settings.classifier.batch_size
        total = 0
        for _ in range(batches):
            labelled = self.store.label_pending(batch, self._classify, self.clock)
            total += labelled
            if labelled < batch:
                break
        return total

    def _classify(self, chunk: list[tuple[int, str]]) -> list[Labels]:
        """One text the model chokes on must not block its batch: fall back to the lexicon for it."""
        started = time.monotonic()
        try:
            labels = self.classifier.classify([text for _, text in chunk])
            self.on_classified(len(chunk), time.monotonic() - started)
            return labels
        except Exception:
            log.exception("classifier failed on a batch of %d; labelling one by one", len(chunk))
        out = []
        for mention_id, text in chunk:
            try:
                out.extend(self.classifier.classify([text]))
            except Exception:
                log.debug("classifier failed on %.80r; using the lexicon", text, extra={"mention_id": mention_id})
                out.extend(self._fallback.classify([text]))
        return out

    def route_pending(self) -> int:
        """Route a batch: notifications for the route tree, kudos for praise, cross-posts attached to their
        earlier twin's item, text hashes and routed_at, in one transaction."""
        pending = self.store.unrouted(500)
        if not pending:
            return 0
        routed_ids = [m.id for m, _ in pending]
        # A brand whose query fails once labelled (intent:, sentiment:, needs_reply:) is not alerted; the
        # mention stays stored and labelled, its `after_labels` saying why.
        pending = [(kept, labels) for m, labels in pending if (kept := kept_after_labels(m, labels)).matched]
        now = self.clock()
        silences = self.store.active_silences(now)
        spikes = self.store.active_spike_alerts()
        notifications, updates = [], []
        answered = self.store.answered_ids([m.id for m, _ in pending])
        hashes = {m.id: key for m, lab in pending if needs_human(m, lab) and (key := text_key(m.text, m.title))}
        oldest = min((m.created_at or m.fetched_at for m, _ in pending if m.id in hashes), default=now)
        known = self.store.crosspost_origins(list(hashes.values()), oldest - CROSSPOST_WINDOW)  # + this batch's
        twins: dict[int, int] = {}
        threads: dict[tuple[str, str | None], dict[str, int]] = {}  # replies of this batch, by thread and id
        for mention, labels in pending:
            carriers = {}
            key = hashes.get(mention.id)
            origin = twin_of(mention, known.get(key, [])) if key else None
            if origin:
                twins[mention.id] = origin.mention_id
                notifications += attached(mention.id, origin)
                sent = next((n.carried_by for n in origin.notifications if n.carried_by), None)
                updates += [link_update(sent, origin, mention)] if sent else []
                continue
            if needs_human(mention, labels):
                carriers = self.store.thread_carriers(mention)
                for thread in ((mention.source, mention.thread_id), (mention.source, mention.parent_id)):
                    carriers = {**threads.get(thread, {}), **carriers} if thread[1] else carriers
            routed = route_mention(mention, labels, self.settings, silences, spikes, carriers, now,
                                   self.receivers.threads)
            if mention.id in answered:  # the team answered before it was routed: recorded, never paged
                notifications += [replace(note, state="answered", alert=None) for note in routed]
                continue
            for note in routed:
                if note.state == "queued" and note.alert is not None:
                    for thread in ((mention.source, mention.external_id), (mention.source, mention.thread_id)):
                        threads.setdefault(thread, {})[note.route] = note.alert.thread_of
            if key and routed:
                known.setdefault(key, []).append(Crosspost(mention.id, routed, mention.source,
                                                           mention.created_at or mention.fetched_at))
            notifications += routed
            notifications += kudos_notifications(mention, labels, self.settings, silences, now)
        self.store.commit_routed(routed_ids, notifications, [], now, hashes, twins, updates)
        return len(routed_ids)

    def next_flush_at(self) -> datetime | None:
        """When the earliest waiting group is due (its group_wait or group_interval over); None when none waits."""
        due = []
        for group in self.store.waiting_groups():
            brand = self.settings.brands.get(group.brand)
            if brand is not None:
                route = route_at(self.settings.routes, group.route, brand)
                due.append(due_at(group, route.group_wait, route.group_interval))
        return min(due, default=None)

    def flush_groups(self, force: bool = False) -> int:
        """Turn each group that is due into its message(s): a new top-level message, or, within its
        group_interval, replies in the thread of its last one; `force` skips group_wait/group_interval (a
        single `run --once` has no later moment to send them), never quiet hours. Returns messages queued."""
        now = self.clock()
        released, dropped = self.store.release_silenced(now)
        if released or dropped:
            log.info("silence ended: %d held alert(s) released, %d dropped (closed meanwhile)", released, dropped)
        silences = self.store.active_silences(now)
        queued = 0
        for group in self.store.waiting_groups():
            brand = self.settings.brands.get(group.brand)
            mode, receiver = "message", SLACK
            if brand is not None:
                route = route_at(self.settings.routes, group.route, brand)
                receiver = route.receiver if route.receiver in self.settings.receiver_names else SLACK
                mode = flush_mode(group, route.group_wait, route.group_interval, route.quiet_hours, now, force)
                if mode is None or (mode == "thread" and receiver not in self.receivers.threads):
                    continue  # a receiver without threads hears from a group once per group_interval
            items, closed = [], []
            for item in self.store.group_items(group.group_key):
                if item.closed:  # answered (e.g. on Reddit) or dismissed while it waited: nothing to announce
                    closed.append(item.notification_id)
                    continue
                # A silence added while the group waited (the usual case: a burst prompts it) holds it too.
                silence = silencing(silences, item.brand, item.mention, item.labels, group.channel, now)
                if silence is not None:
                    self.store.hold([item.notification_id], silence.id)
                else:
                    items.append(item)
            self.store.drop_notifications(closed)
            messages = group_messages(group, items, self.settings, receiver)
            if messages:
                self.store.commit_flush(group.group_key, group.channel, messages, now,
                                        thread_of=group.last_alert_id if mode == "thread" else None)
                queued += len(messages)
        return queued

    def deliver(self) -> DeliveryReport:
        """Every receiver's rows, each by its own sender (Slack's first): none holds up another; the
        report's `stopped` says whether one stopped (an outage, a long 429)."""
        return self.receivers.deliver()

    def process(self, flush_all: bool = False) -> DeliveryReport:
        """Batch by batch: label one classifier batch, then summarise a brand's backlog (first run, long
        outage), route, tick the reply clock, flush the groups that are due (all but those in quiet hours
        with `flush_all`) and drain the outbox as far as the receivers let us, until nothing is left to
        label. A backlog never delays the first alerts: what is labelled is on its way before the next
        batch is labelled. Once a receiver stops delivery (Slack's outage, a long 429) the rest of the
        backlog is still labelled and routed, not sent."""
        total = DeliveryReport()
        with Progress("labelling, routing and sending stored mentions", unit="mentions", bars=False) as backlog:
            while True:
                labelled = self.classify_pending(batches=1)
                for stage in self.stages:
                    if stage.off is None:
                        stage.run(self.clock(), flush_all)
                if not total.stopped:
                    self._drain(total)
                if not labelled:
                    return total
                backlog.advance(labelled)  # a line every 10 s while a backlog (first run, outage) lasts

    def _route_all(self) -> None:
        while self.route_pending():
            pass

    def _drain(self, total: DeliveryReport) -> None:
        while True:
            report = self.deliver()
            total.sent += report.sent
            total.reconciled += report.reconciled
            total.failed += report.failed
            if report.stopped or not (report.sent or report.reconciled or report.failed):
                total.stopped = report.stopped
                return
