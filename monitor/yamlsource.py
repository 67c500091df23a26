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
# A config is a few hundred values a few levels deep: these bounds stop an alias bomb ("billion laughs"),
# a recursive anchor or a 5,000-level nesting with one clear error instead of memory, time or a traceback.
MAX_VALUES = 100_000
MAX_DEPTH = 64


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


class UnresolvedEnvironment(dict):
    """The environment for `validate --no-environment` (CI without the secrets): a variable that is not
    set and has no `:-` default reads as `unset-NAME`, so the structure is checked and nothing is
    reported missing."""


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
        if isinstance(env, UnresolvedEnvironment):
            return f"unset-{name}"
        if op == ":?":
            problems.append(f"environment variable {name} is not set: {arg or 'required'}")
        elif current is None:
            problems.append(f"environment variable {name} is not set")
        return ""

    expanded = _VAR.sub(one, value)
    if "${" in _VAR.sub("", value):
        problems.append("an unclosed ${ : write ${VAR}, or $$ for a literal $")
    return expanded, problems


def load_yaml(text: str, env: Mapping[str, str] | None = None) -> LoadedYaml:
    env = os.environ if env is None else env
    result = LoadedYaml(data=None, text=text)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        result.errors.append(SourceError(1, (), "", f"YAML nested at most {MAX_DEPTH} levels deep"))
        return result
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)  # a ReaderError (a control character) has no mark
        line = mark.line + 1 if mark else text[:position].count("\n") + 1 if isinstance(position, int) else 1
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line per problem
        result.errors.append(SourceError(line, (), "", f"valid YAML ({problem})"))
        return result
    if node is None:
        result.data = {}
        return result
    constructor = yaml.SafeLoader("")
    result.data = _Builder(constructor, env, result).build(node, (), frozenset())
    return result


class _Builder:
    """Builds values from the node graph, where an alias is the same node reached again: counting every
    value built (aliases expanded) and refusing a node inside itself."""

    def __init__(self, constructor: yaml.SafeLoader, env: Mapping[str, str], out: LoadedYaml):
        self.constructor, self.env, self.out = constructor, env, out
        self.built = 0
        self.stopped = False

    def build(self, node: yaml.Node, path: Path, active: frozenset[int]) -> Any:
        out = self.out
        line = node.start_mark.line + 1
        if self.stopped:
            return None
        self.built += 1
        if self.built > MAX_VALUES:
            self.stopped = True
            out.errors.append(SourceError(line, path, "", f"at most {MAX_VALUES:,} values with aliases expanded "
                                                          "(an anchor used over and over, a \"billion laughs\")"))
            return None
        if id(node) in active:
            out.errors.append(SourceError(line, path, str(node.tag), "no recursive alias (an anchor used inside itself)"))
            return None
        if len(path) > MAX_DEPTH:
            self.stopped = True
            out.errors.append(SourceError(line, path[:4] + ("…",), "", f"nesting at most {MAX_DEPTH} levels deep"))
            return None
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            active = active | {id(node)}
        return _build(node, path, self, active)


def _build(node: yaml.Node, path: Path, builder: _Builder, active: frozenset[int]) -> Any:
    constructor, env, out = builder.constructor, builder.env, builder.out
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            try:
                key = constructor.construct_object(key_node)
                hash(key)
            except (yaml.YAMLError, TypeError, ValueError, RecursionError):  # a tagged key, a list or mapping as a key
                out.errors.append(SourceError(key_node.start_mark.line + 1, path, str(key_node.tag),
                                              "a plain text key"))
                continue
            if key in mapping:
                out.errors.append(SourceError(key_node.start_mark.line + 1, path + (key,), str(key),
                                              "each key only once in a mapping (duplicate key)"))
                continue
            child = path + (key,)
            mapping[key] = builder.build(value_node, child, active)
            out.lines[child] = key_node.start_mark.line + 1
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [builder.build(item, path + (i,), active) for i, item in enumerate(node.value)]
    out.scalars[path] = (node.start_mark.line + 1, node.start_mark.column + 1, node.style)
    try:
        value = constructor.construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:  # a `!!python/object` tag, a 5,000-digit number
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
