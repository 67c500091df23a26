"""The shipped systemd unit, Dockerfile and compose file: hardened as the README says, and pointing at
commands and endpoints that exist (`systemd-analyze verify` runs where systemd is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "packaging" / "systemd" / "mentionwatch.service"
MENTIONWATCH = str(Path(sys.executable).with_name("mentionwatch"))


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's format: sections, `Key=Value` lines (a key may repeat), `#` comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if re.fullmatch(r"\[[A-Za-z]+\]", line):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert current is not None and sep, f"not a unit line: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


def test_the_unit_is_hardened_and_reloads_with_sighup():
    unit = unit_sections(UNIT.read_text())
    service = unit["Service"]
    assert service["User"] == ["mentionwatch"] and service["Group"] == ["mentionwatch"]
    assert service["ProtectSystem"] == ["strict"] and service["ProtectHome"] == ["yes"]
    assert service["NoNewPrivileges"] == ["yes"] and service["CapabilityBoundingSet"] == [""]
    assert service["Restart"] == ["on-failure"] and service["RestartPreventExitStatus"] == ["78"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["StateDirectory"] == ["mentionwatch"]
    assert "/var/lib/mentionwatch/" in " ".join(service["Environment"])  # the database is in the state directory
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_units_commands_exist():
    service = unit_sections(UNIT.read_text())["Service"]
    for line in service["ExecStart"] + service["ExecStartPre"]:
        args = line.split()[1:]
        command = [a for a in args if not a.startswith("/etc/")]  # the config path is the host's
        result = subprocess.run([MENTIONWATCH, *command, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (line, result.stderr)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_unit(tmp_path):
    # verify checks that ExecStart's program exists: point it at this environment's mentionwatch
    unit = tmp_path / "mentionwatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/mentionwatch/bin/mentionwatch", MENTIONWATCH))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if "mentionwatch.service" in line]
    assert result.returncode == 0 and problems == [], result.stderr


def test_the_image_is_cpu_only_non_root_with_the_model_and_a_healthcheck():
    text = (ROOT / "packaging" / "Dockerfile").read_text()
    assert re.search(r"pip install --index-url https://download\.pytorch\.org/whl/cpu torch==2\.13\.0", text)
    assert text.index("torch==2.13.0") < text.index("pip install '.[postgres]'")  # torch first: no CUDA pull
    assert "COPY classifiers ./classifiers" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*\n(?:.*\\\n)*.*$", text, re.M)
    assert health and "/healthz" in text[health.start():]
    assert "9464" in text


def test_compose_runs_it_next_to_postgresql():
    compose = yaml.safe_load((ROOT / "packaging" / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    app = services["mentionwatch"]
    assert app["build"]["dockerfile"] == "packaging/Dockerfile"
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["environment"]["MENTIONWATCH_DB"].startswith("postgresql+psycopg://")
    assert all("PASSWORD}" in v or "TOKEN" in k or not re.search(r"pass|token", v, re.I)
               for k, v in app["environment"].items())  # secrets come from .env, never written here
    second = services["mentionwatch-2"]  # a second node on the same database and config, its own port
    assert second["environment"] == app["environment"] and second["build"] == app["build"]
    assert second["ports"] != app["ports"] and second["volumes"][0] == app["volumes"][0]
