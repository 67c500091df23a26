"""Shared fixtures: the loopback emulators and the storage backends. Shared helpers (configs, histories, worlds) are
in tests/support."""

from __future__ import annotations

import os

import pytest

from emulators.feeds import FeedsEmulator
from emulators.slack import SlackEmulator
from tests.support.database import BACKENDS, SERVER_URL, PostgresDatabases, sqlite_url

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


@pytest.fixture(scope="session")
def postgres_databases():
    if SERVER_URL is None:
        pytest.skip("MENTIONWATCH_TEST_DATABASE_URL is not set")
    databases = PostgresDatabases(SERVER_URL)
    yield databases
    databases.close()


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path, monkeypatch) -> str:
    """A fresh, empty database's URL on each backend (ids `sqlite`, `postgresql`). The configs that
    tests/support/config.py writes point at it, so daemons started as subprocesses use it too."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        databases = request.getfixturevalue("postgres_databases")
        url = databases.create()
        request.addfinalizer(lambda: databases.drop(url))
    monkeypatch.setenv("MENTIONWATCH_TEST_STORE_URL", url)
    return url
