"""Logging set-up: one line per state change, and no secret ever printed."""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any, Iterable
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr


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


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
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
