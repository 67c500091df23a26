"""The long-running process: one APScheduler job per source plus one job that processes and sends.

SIGTERM/SIGINT stop it within the configured grace (state is crash-safe, so a job still stuck in a
network call after the grace is abandoned, not waited for). SIGHUP reloads the config and keeps the
running one if the new file is invalid.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from alerts.receivers import DeliveryReport, receiver_types
from alerts.slack import make_client
from classifiers import load_classifier
from classifiers.base import describe
from connectors.registry import stop_readers
from monitor.config import ConfigError, Settings, load_settings
from monitor.health import CLASSIFIER_HEALTH_ID, SourceHealth
from monitor.core.logs import REDACTOR, secrets_of
from monitor.core.clock import Clock, utcnow
from monitor.nodes import PROCESS_LEASE, NodeLeases, poll_ttl, process_ttl
from monitor.pipeline import Pipeline
from monitor.prune import prune
from monitor.store import Store
from monitor.store.exclusive import hold_database
from monitor.core.logs import get_logger

log = get_logger(__name__)
PROCESS_JOB = "process"
PRUNE_JOB = "prune"
PRUNE_DELAY = timedelta(minutes=1)
EXIT_OK, EXIT_SOURCE_FAILED, EXIT_DELIVERY_STOPPED = 0, 1, 2  # `run --once`, documented in the README
EXIT_DATABASE_BUSY = 75  # EX_TEMPFAIL: another daemon runs on this SQLite file


@dataclass
class OnceSummary:
    """What one `run --once` did, as the line it prints for cron mail and CI logs."""

    sources: int = 0
    new_mentions: int = 0
    sent: int = 0
    failed_sources: int = 0
    failed_messages: int = 0
    stopped: str | None = None

    def line(self) -> str:
        text = (f"polled {self.sources} source(s): {self.new_mentions} new mention(s), {self.sent} Slack "
                f"message(s) sent, {self.failed_sources} source(s) failed, {self.failed_messages} message(s) failed")
        return text + (f"; delivery stopped: {self.stopped}" if self.stopped else "")


def build_pipeline(settings: Settings, store: Store, classifier=None, clock: Clock = utcnow) -> Pipeline:
    """The pipeline and its receivers' senders, on one clock."""
    REDACTOR.update(secrets_of(settings))
    return Pipeline(settings, store, classifier or load_classifier(settings.classifier.kind), clock=clock)


class Daemon:
    def __init__(self, config_path: str, settings: Settings):
        self.config_path = config_path
        self._exclusive = hold_database(settings.storage.url)  # SQLite: one daemon per file (DatabaseBusy)
        self.store = Store(settings.storage.url)
        self.leases = NodeLeases(self.store)  # PostgreSQL: shared jobs go to one node at a time
        self.pipeline = self._build(settings)
        self._record_classifier()
        log.info("pipeline: %s", self.pipeline.describe())
        self.stop_event = threading.Event()
        self._process_lock = threading.Lock()
        self._processing = False      # a process run is under way (APScheduler would skip a second one)
        self._process_wanted = False  # asked for while it was: it runs again when that one ends
        self.reload_event = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self._running = 0
        self._running_lock = threading.Lock()
        self.socket_mode = None
        self.summary: OnceSummary | None = None  # set by run_once
        self.metrics = None  # Metrics, when `http.listen` is set (run only)
        self.http = None

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    def run_once(self) -> int:
        """Every source once, whatever the others do, then classify, route and send everything: for
        cron and tests. Returns the exit code: EXIT_OK, EXIT_SOURCE_FAILED (a source failed, or is
        still waiting to retry; the others were still polled and what they found sent) or EXIT_DELIVERY_STOPPED (Slack delivery
        stopped with alerts still queued; they go out on the next run). On PostgreSQL, what another node holds
        is left to it (see _wait_for_leases)."""
        failed = []
        self.summary = summary = OnceSummary()
        mine = self._wait_for_leases()
        for source_id in self.pipeline.sources:
            if f"poll:{source_id}" not in mine:
                continue  # another node polls it now
            summary.sources += 1
            try:
                summary.new_mentions += len(self.pipeline.poll(source_id).new_ids)
            except Exception:  # noqa: BLE001 - e.g. the store refused: the next source is still polled
                log.exception("source %s: poll failed", source_id)
                failed.append(source_id)
                continue
            if self.store.get_health(source_id).state != "ok":  # failed now, or still waiting to retry
                failed.append(source_id)
        report = self.pipeline.process(flush_all=True) if PROCESS_LEASE in mine else DeliveryReport()
        self.leases.release()
        summary.sent, summary.failed_messages = report.sent, report.failed
        summary.failed_sources, summary.stopped = len(failed), report.stopped
        if report.stopped:
            log.warning("Slack delivery stopped early (%s); %s", report.stopped, self.store.alert_counts())
            return EXIT_DELIVERY_STOPPED
        if failed:
            log.warning("%d of %d source(s) failed: %s", len(failed), summary.sources, ", ".join(failed))
            return EXIT_SOURCE_FAILED
        return EXIT_OK

    def _record_classifier(self) -> None:
        """Logs the loaded classifier and what runs it, once per load, and stores it for `status`."""
        line = describe(self.pipeline.classifier)
        log.info("classifier %s", line)
        now = utcnow()
        self.store.save_health(SourceHealth(CLASSIFIER_HEALTH_ID, kind="classifier", message=line, since=now,
                                            last_success_at=now, last_attempt_at=now))

    # --- scheduled mode ------------------------------------------------------------------------

    def run(self) -> int:
        daemon = self.settings.daemon
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(daemon.workers)}, timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self._schedule_all()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
            signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
            signal.signal(signal.SIGHUP, lambda *_: self.reload_event.set())
        self._start_http()
        self.scheduler.start()
        self._start_socket_mode()
        log.info("mentionwatch running: %d sources, %d brands, classifier %s", len(self.pipeline.sources),
                 len(self.settings.brands), self.pipeline.classifier.version)
        while True:  # ticks from the start: the first polls can be done and sent before 0.2 s have passed
            if self.metrics is not None:
                self.metrics.tick()
            if self.reload_event.is_set():
                self.reload_event.clear()
                self.reload()
            if self.stop_event.wait(0.2):
                return self._shutdown()

    def _shutdown(self) -> int:
        log.info("stopping")
        self.scheduler.shutdown(wait=False)
        if self.socket_mode is not None:
            self.socket_mode.stop()
        if self.http is not None:
            self.http.stop()
        grace = self.settings.daemon.shutdown_grace.total_seconds()
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_readers()  # after the polls, so none starts a reader again
        if self._running:
            log.warning("%d job(s) still in a network call after %.0f s; exiting anyway (their work is redone "
                        "on the next start)", self._running, grace)
            if threading.current_thread() is not threading.main_thread():
                return 1  # run inside another program (the demo): leave the process, and its output, to it
            logging.shutdown()
            os._exit(0)
        self.leases.release()
        self.store.close()
        self.release()
        return 0

    def release(self) -> None:
        """Let another daemon use the SQLite file (the process's exit does the same)."""
        if self._exclusive is not None:
            self._exclusive.release()

    def _schedule_all(self) -> None:
        now = datetime.now(timezone.utc)
        wanted = set()
        for source_id, (_, source) in self.pipeline.sources.items():
            job_id = f"poll:{source_id}"
            wanted.add(job_id)
            interval = source.interval.total_seconds()
            self.scheduler.add_job(self._poll_job, "interval", args=[source_id], id=job_id, replace_existing=True,
                                   seconds=interval, jitter=max(int(interval * self.settings.daemon.jitter), 0),
                                   next_run_time=now)
        self.scheduler.add_job(self._process_job, "interval", id=PROCESS_JOB, replace_existing=True,
                               seconds=self.settings.daemon.process_interval.total_seconds(), next_run_time=now)
        retention = self.settings.retention
        if retention.enabled:  # first a while after start, so a restart loop does not prune at every start
            self.scheduler.add_job(self._prune_job, "interval", id=PRUNE_JOB, replace_existing=True,
                                   seconds=retention.every.total_seconds(), next_run_time=now + PRUNE_DELAY)
        elif self.scheduler.get_job(PRUNE_JOB):
            self.scheduler.remove_job(PRUNE_JOB)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("poll:") and job.id not in wanted:
                job.remove()

    def _start_http(self) -> None:
        """/metrics, /healthz and /readyz, when the config asks for them (a reload does not move them)."""
        if self.settings.http.listen is None:
            return
        from monitor.metrics import HttpServer, Metrics, SlackAuth

        def x_caps() -> dict[str, int]:
            x = self.settings.x
            return {x.app: x.monthly_read_cap} if x is not None else {}
        self.metrics = Metrics(lambda: self.store, lambda: list(self.pipeline.sources), self.pipeline.clock,
                               slack_auth=SlackAuth(lambda: make_client(self.settings.slack)), x_caps=x_caps)
        self.http = HttpServer(self.metrics, self.settings.http.listen).start()

    def _start_socket_mode(self) -> None:
        """Slack actions arrive over Socket Mode when an app token is configured; else the CLI does them."""
        if self.settings.slack.app_token is None:
            return
        from alerts.socket_mode import SocketMode

        self.socket_mode = SocketMode(lambda: self.settings, self.store, self.pipeline.clock, self._deliver_soon).start()

    def _deliver_soon(self) -> None:
        """Run the process job now (new mentions stored, a message update queued by an action) rather than
        at its next periodic run; when a run is under way, again as soon as it ends."""
        if self.scheduler is None or self.stop_event.is_set():
            return
        with self._process_lock:
            self._process_wanted = True
            if self._processing:
                return
        self.scheduler.modify_job(PROCESS_JOB, next_run_time=datetime.now(timezone.utc))

    def _guard(self, fn, *args):
        if self.stop_event.is_set():
            return None
        with self._running_lock:
            self._running += 1
        try:
            return fn(*args)
        except Exception:
            log.exception("job %s failed unexpectedly", getattr(fn, "__name__", fn))
            return None
        finally:
            with self._running_lock:
                self._running -= 1

    def _build(self, settings: Settings, classifier=None) -> Pipeline:
        pipeline = build_pipeline(settings, self.store, classifier)
        pipeline.receivers.follow_lead(self._leads)
        pipeline.on_classified = self._classified
        return pipeline

    def _wait_for_leases(self) -> set[str]:
        """The leases `run --once` takes: the process lease, waited for until a dead leader's would have
        expired, then each source's that is free by then (a source a dead node held with a longer lease
        waits for it, about two intervals, as on any node)."""
        ttl = process_ttl(self.settings.daemon.process_interval, self.settings.slack.timeout)
        deadline = time.monotonic() + ttl.total_seconds()
        leads = self._leads()
        while not leads and time.monotonic() < deadline:
            time.sleep(0.5)
            leads = self._leads()
        return {f"poll:{sid}" for sid in self.pipeline.sources if self._holds_source(sid)} | (
            {PROCESS_LEASE} if leads else set())

    def _holds_source(self, source_id: str) -> bool:
        """Whether this node polls `source_id` now (always, on SQLite)."""
        source = self.pipeline.sources[source_id][1]
        ttl = poll_ttl(source.interval, self.settings.daemon.jitter)
        return self._lease(f"poll:{source_id}", ttl)

    def _leads(self) -> bool:
        """Whether this node runs the process job (and sends) now; renewed by each call."""
        ttl = process_ttl(self.settings.daemon.process_interval, self.settings.slack.timeout)
        return self._lease(PROCESS_LEASE, ttl)

    def _lease(self, name: str, ttl) -> bool:
        try:
            return self.leases.hold(name, ttl, utcnow())
        except Exception:  # noqa: BLE001 - the database is unreachable: nobody can take the job from us either
            log.exception("could not renew lease %s", name)
            return False

    def _poll_job(self, source_id: str) -> None:
        if not self._holds_source(source_id):
            return
        started = time.monotonic()
        outcome = self._guard(self.pipeline.poll, source_id)
        if outcome is not None and self.metrics is not None:
            self.metrics.record_poll(outcome, time.monotonic() - started)
        if outcome is None or self.stop_event.is_set():
            return
        job = self.scheduler.get_job(f"poll:{source_id}")
        if job and outcome.deferred_until and job.next_run_time and outcome.deferred_until > job.next_run_time:
            job.modify(next_run_time=outcome.deferred_until)
        if outcome.new_ids:
            self._deliver_soon()

    def _classified(self, size: int, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.record_classified(size, seconds)

    def _process_job(self) -> None:
        """The leader processes until no poll or action asked for another run meanwhile (APScheduler would
        skip a second instance), then brings the next run forward to the earliest group's flush. On
        PostgreSQL the other nodes help label the backlog meanwhile."""
        if not self._leads():
            if self.leases.shared:
                self._guard(self._label_backlog)
            return
        with self._process_lock:
            self._processing = True
        while True:
            with self._process_lock:
                self._process_wanted = False
            report = self._guard(self.pipeline.process)
            if report is not None and self.metrics is not None:
                self.metrics.record_delivery(report)
            due = self._guard(self.pipeline.next_flush_at)
            leads = self._leads()  # a run that lost the lead leaves the next one to the new leader
            with self._process_lock:
                if self._process_wanted and leads and not self.stop_event.is_set():
                    continue
                self._processing = False
                self._flush_at(due)
                return

    def _flush_at(self, due: datetime | None) -> None:
        """Run the process job at `due` when that comes before its next periodic run. (A group already
        due but held by quiet hours is left to the periodic runs.)"""
        job = self.scheduler.get_job(PROCESS_JOB) if self.scheduler is not None else None
        if job is None or due is None or self.stop_event.is_set() or due <= datetime.now(timezone.utc):
            return
        if job.next_run_time is None or due < job.next_run_time:
            job.modify(next_run_time=due)

    def _label_backlog(self) -> None:
        while not self.stop_event.is_set() and self.pipeline.classify_pending(batches=1):
            pass

    def _prune_job(self) -> None:
        """Short transactions in a worker thread of its own: polls and deliveries go on meanwhile. On
        several nodes the one that leads prunes (two would only repeat each other's deletes)."""
        if not self._leads():
            return
        self._guard(prune, self.store, self.settings.retention, self.pipeline.clock(), self.stop_event.is_set)

    def reload(self) -> None:
        try:
            settings, warnings = load_settings(self.config_path, receiver_types=receiver_types())
        except ConfigError as exc:
            log.error("config reload failed; still running the previous config:\n%s", exc)
            return
        for warning in warnings:
            log.warning("%s", warning)
        if settings.storage.url != self.settings.storage.url:
            log.warning("storage.url changed: restart mentionwatch to use the new database")
            settings = settings.model_copy(update={"storage": self.settings.storage})
        same_model = settings.classifier.kind == self.settings.classifier.kind
        slack_changed = settings.slack != self.settings.slack  # Socket Mode's own client uses all of it
        self.pipeline = self._build(settings, self.pipeline.classifier if same_model else None)
        if not same_model:
            self._record_classifier()
        self._schedule_all()
        if slack_changed:  # a new app or bot token (or none) needs a new Socket Mode connection
            if self.socket_mode is not None:
                self.socket_mode.stop()
                self.socket_mode = None
            self._start_socket_mode()
        log.info("config reloaded: %d sources, %d brands", len(self.pipeline.sources), len(settings.brands))
