"""Shared fixtures: the loopback emulators. Shared helpers (configs, histories, worlds) are in tests/support."""

from __future__ import annotations

import os

import pytest

from emulators.feeds import FeedsEmulator
from emulators.slack import SlackEmulator

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture
def feeds():
    with FeedsEmulator() as emulator:
        yield emulator


@pytest.fixture
def slack():
    with SlackEmulator() as emulator:
        yield emulator
