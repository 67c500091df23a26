"""Logging set-up: one line per state change, and no secret ever printed."""

from __future__ import annotations

import logging
import re
import sys
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr
from pythonjsonlogger.json import JsonFormatter


_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}")
MIN_SECRET = 4  # shorter values (a port, "on") would blank ordinary words


def _forms(secret: str) -> set[str]:
    """A secret as it may appear: verbatim, and percent-encoded as in a URL or a form."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}


class RedactSecrets(logging.Filter):
    """Replaces every known secret value (SecretStr settings and every `${VAR}` value) in text: the one
    redaction used for logs, failure messages, stored health, Slack messages, status and export.

    Secrets are only ever added: a value from an earlier config of this process stays secret."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets: list[str] = []
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._known |= {form for s in secrets if s and len(s) >= MIN_SECRET for form in _forms(s)}
            self.secrets = sorted(self._known, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "<secret>")
        # tokens a platform minted (OAuth access tokens) are in no config: an echoed header still goes
        return _BEARER.sub(r"\1<secret>", text) if "earer" in text else text

    def redact_value(self, value: Any) -> Any:
        """`redact` through a JSON-like value (a Slack payload, an export row)."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            redacted = self.redact(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
            if record.stack_info:
                record.stack_info = self.redact(record.stack_info)
        return True


ROOT_LOGGER = "mentionwatch"
REDACTOR = RedactSecrets()


def redact(text: str) -> str:
    """Every known secret in `text` replaced by `<secret>`."""
    return REDACTOR.redact(text)


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("mentionwatch_log_context", default={})


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Fields (`source_id`, `mention_id`) added to every record logged inside the block, in this thread
    or task: JSON lines carry them without each call site repeating them."""
    token = _CONTEXT.set({**_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFields(logging.Filter):
    """Copies the current `log_context` onto a record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _CONTEXT.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, then any context fields
    (source_id, mention_id) and the exception; every string value passes the redactor, so a secret in
    an `extra=` field or a traceback is blanked as in text logs."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s",
                         rename_fields={"levelname": "level", "name": "logger"}, json_ensure_ascii=False)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = str(log_data.get("level", "")).lower()

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return REDACTOR.redact_value(log_data)


class _Stderr(logging.StreamHandler):
    """A stream handler on whatever `sys.stderr` is at each write (a replaced stream is followed)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def check_level(level: str) -> str:
    """`level` as logging spells it, or ValueError naming the accepted ones."""
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"{level!r} is not a log level; expected one of {', '.join(LOG_LEVELS)}")
    return level.upper()


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Stderr logging for the whole process: text lines or JSON lines, redacted either way. Replaces a
    handler an earlier call installed (and nothing else), so calling it again changes level or format."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"{fmt!r} is not a log format; expected one of {', '.join(LOG_FORMATS)}")
    handler = _Stderr()
    handler.set_name("mentionwatch")
    handler.setFormatter(JsonLines() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ContextFields())
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "mentionwatch"] + [handler]
    root.setLevel(check_level(level))
    # APScheduler logs two INFO lines per run and a WARNING per skipped overlap: repetition, not change.
    for noisy in ("apscheduler", "urllib3", "slack_sdk", "prawcore", "tweepy"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def secrets_of(settings: BaseModel) -> list[str]:
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(settings)
    return found


def get_logger(module: str) -> logging.Logger:
    """The logger of a module (pass `__name__`), under the one `mentionwatch.*` tree, so a handler or a
    level set on `mentionwatch` reaches every part and nothing else."""
    return logging.getLogger(f"{ROOT_LOGGER}.{module}")
