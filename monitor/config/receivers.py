"""Receivers (Alertmanager's `receivers:`): where a route's messages go. `slack` always exists and is
the default; the config adds named webhooks that get the neutral message as signed JSON."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from monitor.configbase import Duration, Strict

SLACK = "slack"
RECEIVER_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class WebhookReceiver(Strict):
    """POSTs each message as JSON, signed with HMAC-SHA256 of the body, with an idempotency key."""

    type: Literal["webhook"]
    url: str = Field(description="http(s) URL the JSON message is POSTed to")
    secret: SecretStr = Field(description="HMAC-SHA256 key for X-Mentionwatch-Signature, from ${VAR}")
    timeout: Duration = Field(timedelta(seconds=10), description="Whole-request deadline")
    max_backoff: Duration = Field(timedelta(minutes=10), description="Longest wait between retries")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return url

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < 16:
            raise ValueError("a secret of at least 16 characters")
        return secret
