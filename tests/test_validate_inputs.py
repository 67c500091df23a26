"""`validate` answers every input with exit 0 or 78 and a located, useful message: odd encodings, binary
files, alias bombs, recursive anchors, deep nesting, odd keys and tags, huge numbers and durations,
an unclosed `${`; plus typo suggestions, the `#channel` hint, --strict, --format json, --no-environment."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from monitor import cli
from tests.support.config import config_dict, feed_source

ENV = {"SLACK_BOT_TOKEN": "xoxb-validate-token"}
LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


def base(tmp_path) -> dict:
    return config_dict(tmp_path, "http://127.0.0.1:9/api/", [feed_source("blog", "http://127.0.0.1:9/feed")])


def validate(path, *args: str, env: dict | None = None):
    result = CliRunner().invoke(cli.app, ["validate", str(path), *args], env=ENV if env is None else env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def with_yaml(tmp_path, extra: str) -> str:
    return yaml.safe_dump(base(tmp_path)) + extra


CASES = {
    "latin-1": (lambda p: "brands:\n  caf\xe9: {}\n".encode("latin-1"), ":2: ", "UTF-8 text"),
    "binary": (lambda p: bytes(range(256)) * 4, ":2: ", "UTF-8 text"),
    "nul bytes": (lambda p: b"slack:\n  token: a\x00b\n", ":2: ", "valid YAML"),
    "recursive anchor": (lambda p: with_yaml(p, "x: &x [*x]\n"), r":\d+: x\.0: ", "no recursive alias"),
    "recursive mapping": (lambda p: with_yaml(p, "x: &x {y: *x}\n"), r":\d+: x\.y: ", "no recursive alias"),
    "billion laughs": (lambda p: with_yaml(p, LAUGHS), r":\d+: ", "at most 100,000 values with aliases expanded"),
    "5,000 levels, flow": (lambda p: with_yaml(p, "x: " + "[" * 5000 + "]" * 5000 + "\n"), ":1: ",
                           "nested at most 64 levels deep"),
    "5,000 levels, block": (lambda p: with_yaml(p, "".join("  " * i + f"k{i}:\n" for i in range(5000))), ":1: ",
                            "nested at most 64 levels deep"),
    "70 levels": (lambda p: with_yaml(p, "x: " + "[" * 70 + "]" * 70 + "\n"), r":\d+: x\.0\.0\.0\.…: ", "nesting at most 64 levels deep"),
    "list as a key": (lambda p: with_yaml(p, "? [a, b]\n: 1\n"), r":\d+: \(top\): ", "a plain text key"),
    "python tag": (lambda p: with_yaml(p, "x: !!python/name:os.system ''\n"), r":\d+: x: ", "a plain value"),
    "5,000-digit number": (lambda p: _replace(p, "shutdown_grace: 2s", "workers: " + "9" * 5000),
                           r":\d+: daemon\.workers: ", "a plain value"),
    "huge duration": (lambda p: _replace(p, "shutdown_grace: 2s", "shutdown_grace: 99999999999999999999999d"),
                      r":\d+: daemon\.shutdown_grace: ", "at most 36525d"),
    "infinite seconds": (lambda p: _replace(p, "shutdown_grace: 2s", "shutdown_grace: .inf"),
                         r":\d+: daemon\.shutdown_grace: ", "at most 36525d"),
    "unclosed ${": (lambda p: _replace(p, "token: xoxb-test", "token: ${SLACK_BOT_TOKEN"), r":\d+: slack\.token: ",
                    "an unclosed ${"),
}


def _replace(tmp_path, old: str, new: str) -> str:
    text = yaml.safe_dump(base(tmp_path))
    assert old in text, text
    return text.replace(old, new)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_files_get_78_and_a_located_message(tmp_path, name):
    make, where, expected = CASES[name]
    content = make(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    result = validate(path)
    assert result.exit_code == 78, result.output
    assert expected in result.stderr
    assert re.search(re.escape(str(path)) + where, result.stderr), result.stderr
    assert "xoxb-validate-token" not in result.output


def write(tmp_path, config: dict, replace: tuple[str, str] | None = None):
    text = yaml.safe_dump(config)
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_typos_get_a_suggestion(tmp_path):
    config = base(tmp_path)
    config["slakc"] = {}
    config["brands"]["acme"]["sourcse"] = []
    config["brands"]["acme"]["sources"].append({"type": "fede", "name": "b", "url": "http://127.0.0.1:9/b"})
    config["classifier"] = {"kind": "lexicn"}
    out = validate(write(tmp_path, config)).stderr
    assert "slakc: 'slakc': unknown key; did you mean 'slack'?" in out
    assert "brands.acme.sourcse: 'sourcse': unknown key; did you mean 'sources'?" in out
    assert "did you mean 'feed'?" in out
    assert "did you mean 'lexicon'?" in out


def test_an_unquoted_channel_is_explained(tmp_path):
    path = write(tmp_path, base(tmp_path), ("slack_channel: '#acme-alerts'", "slack_channel: #acme-alerts"))
    result = validate(path)
    assert result.exit_code == 78
    assert "brands.acme.slack_channel: None:" in result.stderr and "quote the channel" in result.stderr


def test_strict_fails_on_warnings_and_json_lists_both(tmp_path):
    config = base(tmp_path)
    config["brands"]["beta"] = {"names": ["Beta"], "slack_channel": "#beta", "sources": []}
    path = write(tmp_path, config)
    assert validate(path).exit_code == 0
    strict = validate(path, "--strict")
    assert strict.exit_code == 78 and "warning: brands.beta.sources" in strict.stderr
    report = validate(path, "--strict", "--format", "json")
    body = json.loads(report.stdout)
    assert report.exit_code == 78 and body["valid"] is False and body["errors"] == []
    assert body["warnings"][0]["path"] == "brands.beta.sources" and body["warnings"][0]["line"] > 0
    config["slack"]["timeout"] = "soon"
    bad = json.loads(validate(write(tmp_path, config), "--format", "json").stdout)
    assert bad["valid"] is False and bad["errors"][0]["path"] == "slack.timeout"


def test_no_environment_checks_structure_without_secrets(tmp_path):
    config = base(tmp_path)
    config["slack"]["token"] = "${SLACK_BOT_TOKEN:?set it}"
    config["storage"]["url"] = "${MENTIONWATCH_DB:-sqlite:///" + str(tmp_path / "no" / "such" / "dir" / "mw.db") + "}"
    path = write(tmp_path, config)
    without = validate(path, env={"SLACK_BOT_TOKEN": ""})
    assert without.exit_code == 78 and "SLACK_BOT_TOKEN is not set" in without.stderr
    ci = validate(path, "--no-environment", env={"SLACK_BOT_TOKEN": ""})
    assert ci.exit_code == 0, ci.output
    config["slack"]["timeout"] = "soon"
    assert validate(write(tmp_path, config), "--no-environment", env={"SLACK_BOT_TOKEN": ""}).exit_code == 78
