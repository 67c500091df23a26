"""Receivers (Alertmanager's `receivers:`): where a route's messages go. `slack` always exists and is
the default; the config adds named receivers of any type a receiver plug-in declares
(`alerts/receivers/<type>.py`, `PLUGIN = Receiver(...)`).

The config layer does not know those types (they sit above it): `load_settings` is handed them
(`receiver_types`) and validates each block strictly with its type's model, in the same pass as the
rest of the file, so a mistake is reported at its line. Without them a block stays a `ReceiverBlock`,
which the plug-in validates when its sender is built."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, ValidationInfo, model_validator

from monitor.configbase import Strict

SLACK = "slack"
RECEIVER_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
TYPES_CONTEXT = "receiver_types"  # the validation context key load_settings passes the plug-ins' models under


class ReceiverBlock(Strict):
    """One entry under `receivers:`: its `type` picks the plug-in whose model validates the rest."""

    model_config = ConfigDict(extra="allow")

    type: str

    @model_validator(mode="wrap")
    @classmethod
    def _as_its_type(cls, data: Any, handler, info: ValidationInfo):
        types = (info.context or {}).get(TYPES_CONTEXT)
        if types is None or not isinstance(data, dict):
            return handler(data)
        if data.get("type") not in types:
            why = "; Slack is configured by the top-level `slack:` section" if data.get("type") == SLACK else ""
            raise ValueError(f"unknown receiver type {data.get('type')!r}: expected one of "
                             f"{', '.join(sorted(types))}{why}")
        return types[data["type"]].model_validate(data, context=info.context)
