"""Loading a config file, and the checks behind `mentionwatch validate`: every problem at once, each as
`file:line: key.path: bad value: what is expected` (a query's mistake also with its column and a caret under
it); warnings for likely mistakes."""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path as FsPath
from typing import Any, Mapping

from pydantic import BaseModel, SecretStr, ValidationError

from connectors.registry import platforms
from monitor.config.receivers import TYPES_CONTEXT
from monitor.config.routes import Route, RouteMatch
from monitor.config.settings import SECRET_FIELDS, SOURCE_TYPES, Settings
from monitor.configbase import ConfigProblem
from monitor.core.logs import REDACTOR
from monitor.query import QueryError, query_problem_at, query_warnings
from monitor.yamlsource import LoadedYaml, Path, UnresolvedEnvironment, load_yaml

EX_CONFIG = 78


class ConfigError(Exception):
    """Raised with every problem in the file, never with a secret value in its text."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _show(value: Any, secret: bool) -> str:
    if secret:
        return "<secret>"
    if isinstance(value, (dict, list)):
        return "(" + type(value).__name__ + ")"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…'"


def _locate(loc: tuple, loaded: LoadedYaml) -> tuple[Path, int]:
    """Map a pydantic error location to the YAML path and line, skipping union tags."""
    path: Path = ()
    node: Any = loaded.data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node, path = node[part], path + (part,)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node, path = node[part], path + (part,)
        elif isinstance(node, dict) and node.get("type") == part:
            continue  # the tag pydantic adds for a member of a tagged union
        elif i == len(loc) - 1 and isinstance(node, dict):
            return path + (part,), loaded.lines.get(path, 1)
    return path, loaded.lines.get(path, 1)


def _models_at(annotation: Any, parts: tuple) -> list[type[BaseModel]]:
    """The pydantic models a location inside `annotation` can be (several for a union), following field
    names, dict values, list items and the tag pydantic adds for a member of a tagged union."""
    current = [annotation]
    for part in parts:
        models, containers = _expand(current)
        nxt: list[Any] = []
        for model in models:
            field = model.model_fields.get(part) if isinstance(part, str) else None
            field = field or next((f for f in model.model_fields.values() if f.alias == part), None)
            if field is not None:
                nxt.append(field.annotation)
        tagged = [m for m in models if isinstance(part, str) and _tag_of(m) == part]
        nxt += tagged
        nxt += [args[-1] for origin, args in containers]
        if not nxt:
            return []
        current = nxt
    return _expand(current)[0]


def _expand(annotations: list[Any]) -> tuple[list[type[BaseModel]], list[tuple[Any, tuple]]]:
    models, containers, todo = [], [], list(annotations)
    while todo:
        a = todo.pop()
        origin, args = typing.get_origin(a), typing.get_args(a)
        if origin is typing.Annotated:
            todo.append(args[0])
        elif origin in (typing.Union, types.UnionType):
            todo += list(args)
        elif origin in (dict, list, tuple, set, frozenset) and args:
            containers.append((origin, args))
        elif isinstance(a, type) and issubclass(a, BaseModel):
            models.append(a)
    return models, containers


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    args = typing.get_args(field.annotation) if field is not None else ()
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def _did_you_mean(word: Any, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


_COMMENT_VALUE = re.compile(r":\s+#")


def _comment_hint(line: int, text: str) -> str:
    """An unquoted `#channel` is a YAML comment, so the key reads as empty: say so where it happens."""
    lines = text.splitlines()
    if 0 < line <= len(lines) and _COMMENT_VALUE.search(lines[line - 1]):
        return " (an unquoted # starts a YAML comment: quote the channel, e.g. \"#alerts\")"
    return ""


def _problems_from_validation(exc: ValidationError, loaded: LoadedYaml, file: str,
                              secret_fields: frozenset[str] = SECRET_FIELDS) -> list[ConfigProblem]:
    problems = []
    loader_paths = {e.path for e in loaded.errors}
    for err in exc.errors(include_url=False):
        path, line = _locate(err["loc"], loaded)
        if path in loader_paths:
            continue  # already reported by the loader (a value it could not read becomes None here)
        secret = bool(path) and (path[-1] in secret_fields or path == ("storage", "url")
                                 or any(p[:len(path)] == path for p in loaded.from_env))
        dotted = ".".join(str(p) for p in path)
        if err["type"] == "missing":
            value, expected = "missing", "a value is required"
        elif err["type"] == "extra_forbidden":
            keys = sorted({k for m in _models_at(Settings, tuple(err["loc"][:-1])) for k in m.model_fields})
            value = _show(path[-1], False)
            expected = "unknown key" + (_did_you_mean(path[-1], keys) or " (check spelling; see config.yaml for the keys)")
        else:
            value = _show(err.get("input"), secret)
            expected = err["msg"].removeprefix("Value error, ")
            ctx = err.get("ctx") or {}
            choices = re.findall(r"'([^']*)'", str(ctx.get("expected", ctx.get("expected_tags", ""))))
            word = ctx.get("tag", err.get("input"))
            if choices and isinstance(word, str) and not secret:
                expected += _did_you_mean(word, choices)
            if err.get("input") is None:
                expected += _comment_hint(line, loaded.text)
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, QueryError):
            line, column, caret = query_problem_at(error, loaded.scalars.get(path), loaded.text)
            problems.append(ConfigProblem(file, line, dotted, value, error.reason, column=column, caret=caret))
            continue
        problems.append(ConfigProblem(file, line, dotted, value, expected))
    return problems


def _warnings(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    """Likely mistakes that still leave a runnable config."""
    out = []
    owner: dict[str, str] = {}
    for brand_id, brand in settings.brands.items():
        if not brand.sources:
            out.append(ConfigProblem(file, loaded.lines.get(("brands", brand_id), 1), f"brands.{brand_id}.sources",
                                     "[]", "no sources: this brand is only matched in other brands' sources",
                                     warning=True))
        for kind, terms in brand.terms().items():
            for term in terms:
                key = term.casefold()
                if key in owner and owner[key] != brand_id:
                    out.append(ConfigProblem(file, loaded.lines.get(("brands", brand_id), 1),
                                             f"brands.{brand_id}", repr(term),
                                             f"also a term of brand {owner[key]}: posts will match both",
                                             warning=True))
                owner.setdefault(key, brand_id)
    out += [ConfigProblem(file, loaded.lines.get(path, 1), ".".join(map(str, path)), text, expected, warning=True)
            for path, text, expected in query_warnings(settings, {p.type: p.search for p in platforms() if p.search})]
    for p in platforms():
        if p.warnings is not None:
            out += p.warnings(settings, loaded, file)
    return out + route_problems(settings, loaded, file)


_LIST_KEYS = ("brand", "source", "sentiment", "intent", "language")


def route_problems(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    """Routes that can never match: each reported where it is written, with what makes it unreachable."""
    known_sources = set(settings.sources()) | set(SOURCE_TYPES)
    out: list[ConfigProblem] = []

    def problem(path: Path, value: str, expected: str) -> None:
        line = loaded.lines.get(path, loaded.lines.get(path[:-1], loaded.lines.get(("routes",), 1)))
        out.append(ConfigProblem(file, line, ".".join(map(str, path)), value, expected, warning=True))

    def walk(route: Route, path: Path, allowed: dict[str, set | bool]) -> None:
        for i, child in enumerate(route.routes):
            here = path + ("routes", i)
            m = child.match
            earlier = route.routes[:i]
            if any(s.match == RouteMatch() and not s.continue_ for s in earlier):
                problem(here, "(route)", "never reached: an earlier sibling matches everything and has no "
                        "`continue: true`")
            unknown_brands = sorted(set(m.brand or ()) - set(settings.brands))
            if unknown_brands:
                problem(here + ("match", "brand"), ", ".join(unknown_brands),
                        f"no such brand (brands: {', '.join(sorted(settings.brands))})")
            unknown_sources = sorted(set(m.source or ()) - known_sources)
            if unknown_sources:
                problem(here + ("match", "source"), ", ".join(unknown_sources),
                        "no such source: expected a source id (brand/name) or a type (" + ", ".join(SOURCE_TYPES) + ")")
            if m.intent is not None and set(m.intent) == {"praise"}:
                problem(here + ("match", "intent"), "[praise]", "praise never enters the route tree (it goes to "
                        "kudos, with a reply clock when it speaks to the brand): set the brand's kudos_channel "
                        "to receive praise")
            narrowed = dict(allowed)
            for key in _LIST_KEYS:
                value = getattr(m, key)
                if value is None:
                    continue
                if key in narrowed and not (set(value) & narrowed[key]):
                    problem(here + ("match", key), ", ".join(value),
                            f"contradicts the parent route, which only lets {key} "
                            f"{', '.join(sorted(narrowed[key]))} through: this route can never match")
                narrowed[key] = set(value) & narrowed[key] if key in narrowed else set(value)
            if m.needs_reply is not None:
                if "needs_reply" in narrowed and narrowed["needs_reply"] != m.needs_reply:
                    problem(here + ("match", "needs_reply"), str(m.needs_reply).lower(),
                            "contradicts the parent route's needs_reply: this route can never match")
                narrowed["needs_reply"] = m.needs_reply
            walk(child, here, narrowed)

    walk(settings.routes, ("routes",), {})
    return out


def channel_settings(settings: Settings) -> list[tuple[Path, str]]:
    """Every Slack channel the config names, with its key path (for `validate --check-slack`)."""
    out: list[tuple[Path, str]] = []
    if settings.slack.ops_channel:
        out.append((("slack", "ops_channel"), settings.slack.ops_channel))
    for brand_id, brand in settings.brands.items():
        out.append((("brands", brand_id, "slack_channel"), brand.slack_channel))
        if brand.kudos_channel:
            out.append((("brands", brand_id, "kudos_channel"), brand.kudos_channel))
        if brand.digest.channel:
            out.append((("brands", brand_id, "digest", "channel"), brand.digest.channel))

    def walk(route: Route, path: Path) -> None:
        for key in ("channel", "escalation_channel"):
            if getattr(route, key):
                out.append((path + (key,), getattr(route, key)))
        for i, child in enumerate(route.routes):
            walk(child, path + ("routes", i))

    walk(settings.routes, ("routes",))
    return out


def _environment(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    url = settings.storage.url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        directory = FsPath(url.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not directory.is_dir() or not os.access(directory, os.W_OK):
            return [ConfigProblem(file, loaded.lines.get(("storage", "url"), 1), "storage.url", "<hidden>",
                                  f"a writable directory ({directory} is missing or read-only)")]
    return []


def _receiver_problems(loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    """Each route's `receiver` that names no receiver, at its own line (checked on the raw file, so the
    line is exact)."""
    receivers = loaded.data.get("receivers")
    known = {"slack", *(receivers if isinstance(receivers, dict) else {})}
    out: list[ConfigProblem] = []

    def walk(route: Any, path: Path) -> None:
        if not isinstance(route, dict):
            return
        name = route.get("receiver")
        if isinstance(name, str) and name not in known:
            out.append(ConfigProblem(file, loaded.lines.get(path + ("receiver",), loaded.lines.get(path, 1)),
                                     ".".join(map(str, path + ("receiver",))), repr(name),
                                     f"unknown receiver: one of {', '.join(sorted(known))}"))
        children = route.get("routes")
        for i, child in enumerate(children if isinstance(children, list) else []):
            walk(child, path + ("routes", i))

    walk(loaded.data.get("routes"), ("routes",))
    return out


def load_settings(path: str | os.PathLike, env: Mapping[str, str] | None = None,
                  check_environment: bool = True, receiver_types: Mapping[str, type[BaseModel]] | None = None
                  ) -> tuple[Settings, list[ConfigProblem]]:
    """Load and check a config file; raises ConfigError with every problem; returns warnings.

    `receiver_types` (type -> config model, from the receiver plug-ins: `alerts.receivers.receiver_types`)
    validates each `receivers:` block as its type, with the rest of the file."""
    file = str(path)
    try:
        raw = FsPath(path).read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, 0, "", repr(file), f"a readable file ({exc.strerror})")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem(file, line, "", f"byte 0x{raw[exc.start]:02x}", "UTF-8 text")]) from None
    loaded = load_yaml(text, env)
    REDACTOR.update(loaded.env_values)  # before any error message can quote one
    problems = [ConfigProblem(file, e.line, ".".join(map(str, e.path)), _show(e.value, False), e.expected)
                for e in loaded.errors]
    if loaded.data is None:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    if not isinstance(loaded.data, dict):
        problems.append(ConfigProblem(file, 1, "", "(not a mapping)", "a mapping of settings at the top level"))
        raise ConfigError(problems)
    unknown_receivers = _receiver_problems(loaded, file)
    problems += unknown_receivers
    try:
        settings = Settings.model_validate(loaded.data, context={TYPES_CONTEXT: receiver_types}
                                           if receiver_types is not None else None)
    except ValidationError as exc:
        secrets = SECRET_FIELDS | {name for model in (receiver_types or {}).values()
                                   for name, f in model.model_fields.items() if f.annotation is SecretStr}
        found = _problems_from_validation(exc, loaded, file, secrets)
        if unknown_receivers:  # each is reported at its own line above, not again for the whole file
            found = [p for p in found if not (p.path == "" and p.expected.startswith("unknown receiver"))]
        problems += found
        raise ConfigError(sorted(problems, key=lambda p: p.line)) from None
    if check_environment:
        problems += _environment(settings, loaded, file)
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return settings, _warnings(settings, loaded, file)
