"""Read YAML keeping the line of every key, and expand ${VAR} in scalar values.

Expansion happens on parsed scalars, never on the raw text, so an environment value can never
inject YAML structure, and every error can still name the line it came from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

Path = tuple[str | int, ...]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}|\$\$")


@dataclass(frozen=True)
class SourceError:
    """One problem in the file, located by line and key path."""

    line: int
    path: Path
    value: str
    expected: str


@dataclass
class LoadedYaml:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    errors: list[SourceError] = field(default_factory=list)
    # Paths whose value came from the environment: shown masked in errors, like secrets.
    from_env: set[Path] = field(default_factory=set)
    # The values taken from the environment: all treated as secrets wherever they end up (URLs too).
    env_values: set[str] = field(default_factory=set)
    # Each scalar's start (line, 1-based column) and YAML style, and the text: to point into a value.
    scalars: dict[Path, tuple[int, int, str | None]] = field(default_factory=dict)
    text: str = ""


def expand(value: str, env: Mapping[str, str], used: set[str] | None = None) -> tuple[str, list[str]]:
    """Expand ${VAR}, ${VAR:-default} and ${VAR:?message}; `$$` is a literal `$`. Each value taken
    from `env` is added to `used`."""
    problems: list[str] = []

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if current not in (None, ""):
            if used is not None:
                used.add(current)
            return current
        if op == ":-":
            return arg or ""
        if op == ":?":
            problems.append(f"environment variable {name} is not set: {arg or 'required'}")
        elif current is None:
            problems.append(f"environment variable {name} is not set")
        return ""

    return _VAR.sub(one, value), problems


def load_yaml(text: str, env: Mapping[str, str] | None = None) -> LoadedYaml:
    env = os.environ if env is None else env
    result = LoadedYaml(data=None, text=text)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line per problem
        result.errors.append(SourceError(line, (), "", f"valid YAML ({problem})"))
        return result
    if node is None:
        result.data = {}
        return result
    constructor = yaml.SafeLoader("")
    result.data = _build(node, (), constructor, env, result)
    return result


def _build(node: yaml.Node, path: Path, constructor: yaml.SafeLoader, env, out: LoadedYaml) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            try:
                key = constructor.construct_object(key_node)
                hash(key)
            except (yaml.YAMLError, TypeError):  # a tagged key, or a list or mapping as a key
                out.errors.append(SourceError(key_node.start_mark.line + 1, path, str(key_node.tag),
                                              "a plain text key"))
                continue
            if key in mapping:
                out.errors.append(SourceError(key_node.start_mark.line + 1, path + (key,), str(key),
                                              "each key only once in a mapping (duplicate key)"))
                continue
            child = path + (key,)
            mapping[key] = _build(value_node, child, constructor, env, out)
            out.lines[child] = key_node.start_mark.line + 1
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), constructor, env, out) for i, item in enumerate(node.value)]
    out.scalars[path] = (node.start_mark.line + 1, node.start_mark.column + 1, node.style)
    try:
        value = constructor.construct_object(node)
    except yaml.YAMLError as exc:  # e.g. a `!!python/object` tag: safe loading refuses it
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        out.errors.append(SourceError(node.start_mark.line + 1, path, str(node.tag), f"a plain value ({problem})"))
        return None
    if isinstance(value, str) and "$" in value:
        expanded, problems = expand(value, env, out.env_values)
        if expanded != value:
            out.from_env.add(path)
        for problem in problems:
            out.errors.append(SourceError(node.start_mark.line + 1, path, value, problem))
        return expanded
    return value
