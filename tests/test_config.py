"""The config file: strict models, ${VAR} expansion, `mentionwatch validate` and secret hygiene.

A config mistake must be reported at its line with what was expected, all mistakes at once, and
never with a secret in the text: these tests write YAML as a user would and read what they see.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import EX_CONFIG, ConfigError, load_settings, parse_duration
from monitor.core.logs import RedactSecrets, secrets_of

REPO = Path(__file__).resolve().parent.parent
SECRET = "xoxb-SECRET-123456"
ENV = {"SLACK_BOT_TOKEN": SECRET}
MENTIONWATCH = shutil.which("mentionwatch", path=str(Path(sys.executable).parent))

# A valid config; the line numbers in the table below refer to it.
BASE = """\
slack:
  token: ${SLACK_BOT_TOKEN}
brands:
  acme:
    names: [Acme Cloud]
    slack_channel: "#acme"
    sources:
      - type: feed
        name: blog
        url: https://acme.io/feed
        interval: 10m
"""


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, env: dict[str, str]) -> list:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env)
    return caught.value.problems


def validate(path: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The installed console script, with a clean environment plus `env`."""
    assert MENTIONWATCH, "the mentionwatch console script is not installed next to this Python"
    clean = {k: v for k, v in os.environ.items() if k not in ("SLACK_BOT_TOKEN", "MENTIONWATCH_DB")}
    return subprocess.run([MENTIONWATCH, "validate", str(path)], env={**clean, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def problem_line(path: Path) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(str(path))}:\d+: \S+: .+: .+$")


# --- one bad config -> one problem at the right line, key path and expectation -------------------

BAD = [
    ("unknown top-level key", BASE + "bogus: 1\n", ENV, 12, "bogus", "unknown key"),
    ("typo in a brand key", edit("slack_channel:", "slack_chanel:"), ENV, 6, "brands.acme.slack_chanel",
     "unknown key"),
    ("bad duration", edit("interval: 10m", "interval: ten minutes"), ENV, 11, "brands.acme.sources.0.interval",
     "expected a duration such as 30s"),
    ("missing slack_channel", edit('    slack_channel: "#acme"\n', ""), ENV, 4, "brands.acme.slack_channel",
     "a value is required"),
    ("missing names", edit("    names: [Acme Cloud]\n", ""), ENV, 4, "brands.acme.names", "a value is required"),
    ("empty names", edit("names: [Acme Cloud]", "names: []"), ENV, 5, "brands.acme.names", "at least 1 item"),
    ("bad source type", edit("type: feed", "type: twitter"), ENV, 8, "brands.acme.sources.0", "'feed'"),
    ("bad url", edit("url: https://acme.io/feed", "url: acme.io/feed"), ENV, 10, "brands.acme.sources.0.url",
     "an http:// or https:// URL"),
    ("duplicate source names", BASE + "      - type: feed\n        name: blog\n        url: https://acme.io/b\n",
     ENV, 4, "brands.acme", "repeated: blog"),
    ("duplicate yaml key", edit("    names: [Acme Cloud]\n", "    names: [Acme Cloud]\n    names: [Acme]\n"), ENV,
     6, "brands.acme.names", "duplicate key"),
    ("handle with a space", edit("    names: [Acme Cloud]\n", "    names: [Acme Cloud]\n    handles: ['@acme cloud']\n"),
     ENV, 6, "brands.acme.handles", "without spaces"),
    ("bad domain", edit("    names: [Acme Cloud]\n", "    names: [Acme Cloud]\n    domains: [acme_io]\n"), ENV, 6,
     "brands.acme.domains", "such as acme.io"),
    ("unset variable", BASE, {}, 2, "slack.token", "environment variable SLACK_BOT_TOKEN is not set"),
    ("custom message", edit("${SLACK_BOT_TOKEN}", "${SLACK_BOT_TOKEN:?ask ops for the bot token}"), {}, 2,
     "slack.token", "ask ops for the bot token"),
    ("yaml syntax error", edit("names: [Acme Cloud]", "names: Acme: Cloud"), ENV, 5, "", "valid YAML"),
    ("storage in a missing directory", "storage:\n  url: sqlite:////nonexistent/mentionwatch/mw.db\n" + BASE, ENV,
     2, "storage.url", "a writable directory"),
]


@pytest.mark.parametrize(("text", "env", "line", "path", "expected"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_bad_config_names_line_key_and_expectation(tmp_path, text, env, line, path, expected):
    """`path` is a part of the reported key path: a union of source types may report the item."""
    config = write(tmp_path, text)
    problems = problems_of(config, env)
    assert any(p.line == line and path in p.path and expected in p.expected for p in problems), \
        "\n".join(map(str, problems))
    for problem in problems:
        assert problem_line(config).match(str(problem)), str(problem)


def test_every_problem_in_a_file_is_reported_sorted_by_line(tmp_path):
    config = write(tmp_path, """\
slack:
  token: ${SLACK_BOT_TOKEN}
  timeout: soon
brands:
  acme:
    names: [Acme]
    slack_chanel: "#acme"
    domains: [acme io]
    sources:
      - type: feed
        name: blog
        url: ftp://acme.io
bogus: true
""")
    expected = [(2, "slack.token"), (3, "slack.timeout"), (5, "brands.acme.slack_channel"),
                (7, "brands.acme.slack_chanel"), (8, "brands.acme.domains"), (12, "brands.acme.sources.0.url"),
                (13, "bogus")]
    assert [(p.line, p.path) for p in problems_of(config, {})] == expected

    result = validate(config, {}, tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == EX_CONFIG
    assert len(lines) == len(expected)
    assert all(problem_line(config).match(line) for line in lines), result.stderr
    assert [int(line.split(":")[1]) for line in lines] == [line for line, _ in expected]


def test_yaml_syntax_error_is_reported_alone_at_its_line(tmp_path):
    """Nothing after a syntax error can be trusted, so nothing else is reported."""
    config = write(tmp_path, edit("names: [Acme Cloud]", "names: Acme: Cloud"))
    assert [(p.line, p.path) for p in problems_of(config, ENV)] == [(5, "")]


# --- the CLI -------------------------------------------------------------------------------------

def test_validate_accepts_a_valid_config(tmp_path):
    result = validate(write(tmp_path, BASE), ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_validate_reports_a_syntax_error_with_its_line(tmp_path):
    config = write(tmp_path, edit("names: [Acme Cloud]", "names: Acme: Cloud"))
    result = validate(config, ENV, tmp_path)
    assert result.returncode == EX_CONFIG
    assert f"{config}:5: (top): " in result.stderr and "valid YAML" in result.stderr


def test_shipped_config_validates_with_the_token_set(tmp_path):
    result = validate(REPO / "config.yaml", {"SLACK_BOT_TOKEN": SECRET}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_shipped_config_without_the_token_fails_naming_the_variable(tmp_path):
    result = validate(REPO / "config.yaml", {}, tmp_path)
    assert result.returncode == EX_CONFIG
    assert "slack.token" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
    assert all(problem_line(REPO / "config.yaml").match(line) for line in result.stderr.splitlines())


# --- secrets -------------------------------------------------------------------------------------

SECRET_MISUSES = [
    ("token from env, other errors", BASE.replace("interval: 10m", "interval: soon") + "bogus: 1\n", ENV),
    ("token is a list", edit("${SLACK_BOT_TOKEN}", f"[{SECRET}]"), {}),
    ("token is a mapping", edit("${SLACK_BOT_TOKEN}", f"{{value: {SECRET}}}"), {}),
    ("token under a misspelt key", edit("token: ${SLACK_BOT_TOKEN}", f"tokn: {SECRET}"), {}),
    ("token from env in a non-secret field", edit("interval: 10m", "interval: ${SLACK_BOT_TOKEN}"), ENV),
    ("token from env as the storage url", "storage:\n  url: ${SLACK_BOT_TOKEN}\n" + BASE, ENV),
]


@pytest.mark.parametrize(("text", "env"), [case[1:] for case in SECRET_MISUSES],
                         ids=[case[0] for case in SECRET_MISUSES])
def test_secret_never_in_problems_or_validate_output(tmp_path, text, env):
    config = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env=env)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.problems)
    result = validate(config, env, tmp_path)
    assert result.returncode == EX_CONFIG
    assert SECRET not in result.stdout + result.stderr


def test_env_value_in_a_list_field_is_masked(tmp_path):
    config = write(tmp_path, edit("    names: [Acme Cloud]\n",
                                  "    names: [Acme Cloud]\n    domains: ['${SLACK_BOT_TOKEN}']\n"))
    assert SECRET not in "\n".join(map(str, problems_of(config, ENV)))


def test_loaded_settings_never_show_the_token(tmp_path):
    settings, _ = load_settings(write(tmp_path, BASE), env=ENV)
    assert settings.slack.token.get_secret_value() == SECRET
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert SECRET not in shown


def test_log_records_carrying_a_secret_are_redacted(tmp_path):
    settings, _ = load_settings(write(tmp_path, BASE), env=ENV)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    logger = logging.getLogger("test_config.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling Slack with %s", SECRET)
        logger.warning(f"Authorization: Bearer {SECRET}")
    finally:
        logger.removeHandler(handler)
    assert SECRET not in stream.getvalue()
    assert stream.getvalue().count("<secret>") == 2


def test_secret_in_a_logged_exception_is_redacted():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets([SECRET]))
    logger = logging.getLogger("test_config.redaction.exc")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"request with token {SECRET} failed")
        except RuntimeError:
            logger.exception("job failed unexpectedly")
    finally:
        logger.removeHandler(handler)
    assert SECRET not in stream.getvalue()


# --- expansion -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "channel"), [({}, "#fallback"), ({"CHANNEL": ""}, "#fallback"),
                                              ({"CHANNEL": "#from-env"}, "#from-env")])
def test_default_used_when_variable_unset_or_empty(tmp_path, env, channel):
    config = write(tmp_path, edit('"#acme"', '"${CHANNEL:-#fallback}"'))
    settings, _ = load_settings(config, env={**ENV, **env})
    assert settings.brands["acme"].slack_channel == channel


def test_double_dollar_is_a_literal_dollar(tmp_path):
    config = write(tmp_path, edit("names: [Acme Cloud]", "names: [Acme Cloud, 'Acme $$5 plan', '$${NOT_A_VAR}']"))
    settings, _ = load_settings(config, env=ENV)
    assert settings.brands["acme"].names == ["Acme Cloud", "Acme $5 plan", "${NOT_A_VAR}"]


@pytest.mark.parametrize("value", ["a: b\n- c", "[x, y]", "{k: v}", "*ref", "123"])
def test_environment_values_are_never_parsed_as_yaml(tmp_path, value):
    config = write(tmp_path, edit("names: [Acme Cloud]", "names: [Acme Cloud]\n    aliases: ['${ALIAS}']"))
    settings, _ = load_settings(config, env={**ENV, "ALIAS": value})
    assert settings.brands["acme"].aliases == [value]


def test_variables_expand_inside_a_longer_value(tmp_path):
    config = write(tmp_path, edit("https://acme.io/feed", "https://${FEED_HOST}/feed"))
    settings, _ = load_settings(config, env={**ENV, "FEED_HOST": "blog.acme.io"})
    assert settings.brands["acme"].sources[0].url == "https://blog.acme.io/feed"


# --- durations and term normalisation ------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("30s", timedelta(seconds=30)),
    ("10m", timedelta(minutes=10)),
    ("4h", timedelta(hours=4)),
    ("1d", timedelta(days=1)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1d 2h", timedelta(days=1, hours=2)),
    (90, timedelta(seconds=90)),
    (1.5, timedelta(seconds=1.5)),
    ("90", timedelta(seconds=90)),  # every ${VAR} expansion is a string
])
def test_parse_duration(value, expected):
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["ten minutes", "", "10 minutes", "1h30", "1.5h", "30m1h", "5x", -1, True, None])
def test_parse_duration_refuses(value):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


def test_handles_hashtags_and_domains_are_normalised(tmp_path):
    config = write(tmp_path, edit("    names: [Acme Cloud]\n", """\
    names: [Acme Cloud]
    handles: [acmecloud, "@AcmeSupport"]
    hashtags: [acmecloud, "#AcmeOutage"]
    domains: ["ACME[.]io", Status.Acme.IO]
"""))
    brand = load_settings(config, env=ENV)[0].brands["acme"]
    assert brand.handles == ["@acmecloud", "@AcmeSupport"]
    assert brand.hashtags == ["#acmecloud", "#AcmeOutage"]
    assert brand.domains == ["acme.io", "status.acme.io"]
