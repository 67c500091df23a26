"""The real `mentionwatch run` process, started as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MENTIONWATCH = str(Path(sys.executable).with_name("mentionwatch"))


def start(config: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([MENTIONWATCH, "run", "--config", str(config), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
