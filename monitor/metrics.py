"""`/metrics` (Prometheus text format), `/healthz` and `/readyz` on the opt-in `http.listen` address.

Counters are recorded by the daemon from what each poll, classifier batch and process run returns;
gauges (source health, outbox backlog, reply clocks, queues, X reads this month, memory) are read
from the store at scrape time, so they are right even for work another process did; API budgets are
what the connectors last read in the platforms' rate-limit headers. Labels are source ids, brands,
drop reasons, states, platforms and error kinds only: never a URL, token or text. `/readyz` also asks
Slack whether the bot token is good (`auth.test`, cached)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psutil
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import text

from connectors.x.connector import reads_key
from monitor.core.budgets import API_BUDGETS
from monitor.core.logs import get_logger

log = get_logger(__name__)
PREFIX = "mentionwatch"
HEALTH_STATES = ("ok", "failing", "disabled")
STALE_LOOP = 30.0  # seconds without a main-loop tick before /healthz says the process is stuck
AUTH_TTL = 300.0  # seconds an auth.test answer is trusted by /readyz
AUTH_REFUSALS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


class StoreCollector(Collector):
    """Gauges read from the store on each scrape (a few aggregate queries)."""

    def __init__(self, store_of: Callable, sources_of: Callable[[], Iterable[str]], clock: Callable[[], datetime],
                 x_caps: Callable[[], dict[str, int]] = dict):
        self.store_of, self.sources_of, self.clock, self.x_caps = store_of, sources_of, clock, x_caps

    def _budgets(self, store, now: datetime):
        """What the platforms' rate-limit headers said is left, and X's post reads left this month."""
        left = GaugeMetricFamily(f"{PREFIX}_api_requests_remaining",
                                 "Requests left in the platform's current rate-limit window, as its headers said",
                                 labels=["platform", "scope"])
        reset = GaugeMetricFamily(f"{PREFIX}_api_budget_reset_timestamp_seconds",
                                  "When that rate-limit window resets (Unix time)", labels=["platform", "scope"])
        for (platform, scope), budget in sorted(API_BUDGETS.snapshot().items()):
            left.add_metric([platform, scope], budget.remaining)
            if budget.reset_at is not None:
                reset.add_metric([platform, scope], budget.reset_at)
        yield left
        yield reset
        reads = GaugeMetricFamily(f"{PREFIX}_x_reads_left_this_month",
                                  "X post reads left this month under x.monthly_read_cap", labels=["app"])
        for app, cap in sorted(self.x_caps().items()):
            reads.add_metric([app], max(cap - store.get_usage(reads_key(app), f"{now:%Y-%m}"), 0))
        yield reads

    def collect(self):
        store, now = self.store_of(), self.clock()
        health = {h.source_id: h for h in store.all_health()}
        state = GaugeMetricFamily(f"{PREFIX}_source_health_state", "1 for the state a source is in",
                                  labels=["source", "state"])
        retry = GaugeMetricFamily(f"{PREFIX}_source_next_retry_timestamp_seconds",
                                  "When a failing source is tried again (Unix time)", labels=["source"])
        for source_id in self.sources_of():
            h = health.get(source_id)
            for name in HEALTH_STATES:
                state.add_metric([source_id, name], 1.0 if (h.state if h else "ok") == name else 0.0)
            if h is not None and h.retry_at is not None:
                retry.add_metric([source_id], h.retry_at.timestamp())
        yield state
        yield retry
        backlog = store.outbox_backlog()
        yield GaugeMetricFamily(f"{PREFIX}_outbox_pending", "Slack messages queued and not yet sent",
                                value=backlog.waiting)
        yield GaugeMetricFamily(f"{PREFIX}_outbox_oldest_age_seconds", "Age of the oldest unsent Slack message",
                                value=(now - backlog.oldest).total_seconds() if backlog.oldest else 0.0)
        open_ = GaugeMetricFamily(f"{PREFIX}_reply_clocks_open", "Mentions waiting for a reply", labels=["brand"])
        overdue = GaugeMetricFamily(f"{PREFIX}_reply_clocks_overdue", "Mentions waiting past their promise",
                                    labels=["brand"])
        for brand, (count, late) in sorted(store.reply_clocks_by_brand(now).items()):
            open_.add_metric([brand], count)
            overdue.add_metric([brand], late)
        yield open_
        yield overdue
        yield GaugeMetricFamily(f"{PREFIX}_classifier_queue_depth", "Stored mentions not yet labelled",
                                value=store.unlabelled_count())
        yield GaugeMetricFamily(f"{PREFIX}_routing_queue_depth", "Labelled mentions not yet routed",
                                value=store.unrouted_count())
        yield GaugeMetricFamily(f"{PREFIX}_group_queue_depth", "Routed mentions waiting in their group for a message",
                                value=store.waiting_notifications())
        yield from self._budgets(store, now)
        yield GaugeMetricFamily(f"{PREFIX}_process_resident_memory_bytes", "Resident memory of this process",
                                value=psutil.Process().memory_info().rss)


class SlackAuth:
    """Whether Slack accepts the bot token, from `auth.test` at most once per `ttl` seconds however
    often `/readyz` is probed. A refused token makes the daemon unready; an unreachable Slack does not
    (alerts wait in the outbox, and restarting would not help)."""

    def __init__(self, client_of: Callable[[], WebClient], ttl: float = AUTH_TTL,
                 monotonic: Callable[[], float] = time.monotonic):
        self.client_of, self.ttl, self.monotonic = client_of, ttl, monotonic
        self._lock = threading.Lock()
        self._checked: tuple[float, bool, str] | None = None
        self.calls = 0

    def __call__(self) -> tuple[bool, str]:
        """(ready, what to show): "ok", "refused (invalid_auth)" or "unreachable (…)"."""
        with self._lock:
            now = self.monotonic()
            if self._checked is None or now - self._checked[0] >= self.ttl:
                self.calls += 1
                self._checked = (now, *self._check())
            return self._checked[1], self._checked[2]

    def _check(self) -> tuple[bool, str]:
        try:
            self.client_of().auth_test()
            return True, "ok"
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "error")
            if error in AUTH_REFUSALS:
                log.warning("Slack refuses the bot token (%s): not ready", error)
                return False, f"refused ({error})"
            return True, f"unreachable ({error})"
        except Exception as exc:  # noqa: BLE001 - a network failure is not a token problem
            return True, f"unreachable ({type(exc).__name__})"


class Metrics:
    """One registry per daemon (not the global one: tests and a reload build several)."""

    def __init__(self, store_of: Callable, sources_of: Callable[[], Iterable[str]],
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 slack_auth: Callable[[], tuple[bool, str]] | None = None,
                 x_caps: Callable[[], dict[str, int]] = dict):
        self.registry = CollectorRegistry(auto_describe=True)
        self.store_of, self.sources_of, self.slack_auth = store_of, sources_of, slack_auth
        self.fetched = Counter(f"{PREFIX}_posts_fetched", "Posts a source returned", ["source"], registry=self.registry)
        self.stored = Counter(f"{PREFIX}_posts_stored", "New mentions stored", ["source"], registry=self.registry)
        self.dropped = Counter(f"{PREFIX}_posts_dropped", "Posts not stored, by reason", ["source", "reason"],
                               registry=self.registry)
        self.poll_failures = Counter(f"{PREFIX}_poll_failures", "Failed polls, by kind", ["source", "kind"],
                                     registry=self.registry)
        self.poll_seconds = Histogram(f"{PREFIX}_poll_duration_seconds", "Time one poll took", ["source"],
                                      registry=self.registry, buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.slack_sent = Counter(f"{PREFIX}_slack_messages_sent", "Slack posts, updates and uploads made",
                                  registry=self.registry)
        self.slack_errors = Counter(f"{PREFIX}_slack_errors", "Slack delivery problems, by kind", ["kind"],
                                    registry=self.registry)
        self.ticks = Counter(f"{PREFIX}_loop_ticks", "Main loop iterations", registry=self.registry)
        self.classify_seconds = Histogram(f"{PREFIX}_classifier_batch_duration_seconds",
                                          "Time the classifier took for one batch", registry=self.registry,
                                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.classify_sizes = Histogram(f"{PREFIX}_classifier_batch_size", "Mentions in one classifier batch",
                                        registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.registry.register(StoreCollector(store_of, sources_of, clock, x_caps))
        self.last_tick = time.monotonic()

    def tick(self) -> None:
        self.last_tick = time.monotonic()
        self.ticks.inc()

    def record_poll(self, outcome, seconds: float) -> None:
        source = outcome.source_id
        self.poll_seconds.labels(source).observe(seconds)
        self.fetched.labels(source).inc(outcome.fetched)
        self.stored.labels(source).inc(len(outcome.new_ids))
        for reason, count in outcome.dropped.items():
            self.dropped.labels(source, reason).inc(count)
        if outcome.failure is not None:
            self.poll_failures.labels(source, outcome.failure.kind.value).inc()

    def record_classified(self, size: int, seconds: float) -> None:
        self.classify_sizes.observe(size)
        self.classify_seconds.observe(seconds)

    def record_delivery(self, report) -> None:
        self.slack_sent.inc(report.sent)
        if report.failed:
            self.slack_errors.labels("failed").inc(report.failed)
        if report.stopped:
            self.slack_errors.labels(_error_kind(report.stopped)).inc()

    # --- the HTTP side ---------------------------------------------------------------------------

    def healthz(self) -> tuple[int, dict]:
        age = time.monotonic() - self.last_tick
        return (200 if age < STALE_LOOP else 503), {"alive": True, "loop_tick_age_seconds": round(age, 3),
                                                     "ticks": int(self.ticks._value.get())}

    def readyz(self) -> tuple[int, dict]:
        store = self.store_of()
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            configured = set(self.sources_of())
            disabled = sorted(h.source_id for h in store.all_health()
                              if h.state == "disabled" and h.source_id in configured)
        except Exception as exc:  # noqa: BLE001 - any database error means not ready
            return 503, {"ready": False, "database": f"unreachable ({type(exc).__name__})"}
        answer = {"ready": not disabled, "database": "ok", "disabled_sources": disabled}
        if self.slack_auth is not None:
            slack_ready, answer["slack"] = self.slack_auth()
            answer["ready"] = answer["ready"] and slack_ready
        return (200 if answer["ready"] else 503), answer

    def wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body, status, kind = generate_latest(self.registry), 200, CONTENT_TYPE_LATEST
        elif path in ("/healthz", "/readyz"):
            status, payload = self.healthz() if path == "/healthz" else self.readyz()
            body, kind = json.dumps(payload).encode(), "application/json"
        else:
            body, status, kind = b"not found: try /metrics, /healthz or /readyz\n", 404, "text/plain"
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]


def _error_kind(stopped: str) -> str:
    """A stop reason as a short label value (the first word: `invalid_auth`, `rate_limited`, …)."""
    word = stopped.split()[0].strip(":,;()") if stopped.strip() else "unknown"
    return word[:40] if word.replace("_", "").isalnum() else "other"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # a scrape every 15 s is repetition, not a state change
        pass


class HttpServer:
    """The endpoints on their own thread; `listen` is `host:port` (port 0: any free port)."""

    def __init__(self, metrics: Metrics, listen: str):
        host, _, port = listen.rpartition(":")
        self.server: WSGIServer = make_server(host.strip("[]") or "127.0.0.1", int(port), metrics.wsgi,
                                              handler_class=_Quiet)
        self.thread = threading.Thread(target=self.server.serve_forever, name="mentionwatch-http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> "HttpServer":
        self.thread.start()
        log.info("metrics and health on http://%s (/metrics, /healthz, /readyz)", self.address)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
