"""Every setting the code reads is documented: the README's settings reference is the generator's
output for the current models, every key has a description, and config.yaml shows every key (set, or
commented out with its default). A new setting without docs fails here, naming its key path."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from alerts.receivers import receiver_types
from monitor.config import load_settings
from monitor.settings_reference import END, START, markdown, reference
from monitor.yamlsource import UnresolvedEnvironment

REPO = Path(__file__).resolve().parent.parent
# A commented-out setting: `# key: value` (or `# - key: value`) with the `#` where the key's column is.
COMMENTED_SETTING = re.compile(r"^(\s*)# (\s*(?:- )?[a-z_][a-z0-9_-]*:(?:\s|$).*)$")
# An alternative to the settings above it (`#   or refresh_token: …`), its key at the column of `or`.
ALTERNATIVE = re.compile(r"^(\s*)# (\s*)or ([a-z_][a-z0-9_-]*:(?:\s|$).*)$")


def uncommented(text: str, alternatives: bool = False) -> str:
    """config.yaml with every commented-out setting switched on (with `alternatives`, the settings that
    exclude others too: they show a key, but not in a valid file); prose comments stay comments."""
    lines = (COMMENTED_SETTING.sub(r"\1\2", line) for line in text.splitlines())
    return "\n".join(ALTERNATIVE.sub(r"\1\2\3", line) if alternatives else line for line in lines)


def key_paths(data, prefix: str = "") -> set[str]:
    """The key paths of a loaded config, written as the reference writes them."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            found.add(path)
            if path in ("brands", "receivers") and isinstance(value, dict):
                for name, block in value.items():
                    kind = f"[{block.get('type')}]" if path == "receivers" and isinstance(block, dict) else ""
                    found |= key_paths(block, f"{path}.<{'brand' if path == 'brands' else 'name'}>{kind}")
            else:
                found |= key_paths(value, path)
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                kind = item.get("type", "") if prefix.endswith(".sources") else ""
                found |= key_paths({k: v for k, v in item.items() if not kind or k != "type"}, f"{prefix}[{kind}]")
    return found


def readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = text.index(START), text.index(END) + len(END)
    return text[start:end]


def test_the_readme_reference_is_the_generators_output():
    assert readme_section() == markdown(), \
        "README's settings reference is stale: run `python -m monitor.settings_reference --write`"


def test_every_setting_is_in_the_readme_table():
    section = readme_section()
    missing = [row.path for row in reference() if f"| `{row.path}` |" not in section]
    assert not missing, f"settings missing from the README's reference: {', '.join(missing)}"


def test_every_setting_has_a_description():
    missing = [row.path for row in reference() if not row.description]
    assert not missing, f"settings without a description (pydantic Field(description=...)): {', '.join(missing)}"


def test_the_reference_names_the_settings_a_user_looks_for():
    paths = {row.path: row for row in reference()}
    for path in ("reddit.max_wait", "hackernews.hits_per_page", "mastodon.page_size", "bluesky.replay_window",
                 "brands.<brand>.spikes.min_mentions", "daemon.workers", "slack.rate_limit_retries",
                 "brands.<brand>.sources[reddit].what", "receivers.<name>[webhook].secret",
                 "routes.routes[].match.keywords", "routes.routes[].continue"):
        assert path in paths, path
    assert "routes.match" not in paths  # the root route matches everything: `match` only on its children
    assert (paths["daemon.workers"].type, paths["daemon.workers"].default) == ("int", "8")
    assert paths["brands.<brand>.reply_within"].default == "4h"
    assert paths["slack.token"].default == "required" and paths["slack.token"].type == "secret"


def test_every_setting_is_in_the_example_config():
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    shown = key_paths(yaml.safe_load(uncommented(text, alternatives=True)))
    missing = [row.path for row in reference() if row.path not in shown]
    assert not missing, f"settings missing from config.yaml (add them, commented out if optional): {', '.join(missing)}"


def test_the_example_config_with_every_setting_switched_on_is_valid(tmp_path):
    """The commented-out lines are a working config too: a key or value typo there would mislead."""
    path = tmp_path / "config.yaml"
    path.write_text(uncommented((REPO / "config.yaml").read_text(encoding="utf-8")), encoding="utf-8")
    settings, _ = load_settings(path, UnresolvedEnvironment({}), check_environment=False,
                                receiver_types=receiver_types())
    assert {"reddit", "x"} <= {src.type for src in settings.brands["acme"].sources}
    assert settings.http.listen == "127.0.0.1:9464"
