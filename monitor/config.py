"""The config file as strict, frozen pydantic models, and the checks behind `mentionwatch validate`.

Unknown keys are errors (a typo must never silently disable a watchlist). Every problem is
reported at once, each as `file:line: key.path: bad value: what is expected`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError,
                      field_validator, model_validator)

from monitor.yamlsource import LoadedYaml, Path, SourceError, load_yaml

EX_CONFIG = 78
_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
_SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def parse_duration(value: Any) -> timedelta:
    """`90`, `30s`, `10m`, `4h`, `1d`, `1h30m` -> timedelta; plain numbers are seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    if isinstance(value, str) and value.strip().isdigit():
        return timedelta(seconds=int(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            d, h, m, s = (int(g or 0) for g in match.groups())
            return timedelta(days=d, hours=h, minutes=m, seconds=s)
    raise ValueError("expected a duration such as 30s, 10m, 4h, 1d or 1h30m")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(Strict):
    url: str = Field("sqlite:///mentionwatch.db", description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://…")

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "postgresql")):
            raise ValueError("expected a sqlite:///path or postgresql+psycopg://… URL")
        return url


class SlackConfig(Strict):
    token: SecretStr = Field(description="Bot token (xoxb-…), from ${SLACK_BOT_TOKEN}")
    base_url: str = "https://slack.com/api/"
    timeout: Duration = timedelta(seconds=10)
    ops_channel: str | None = Field(None, description="Where source-health messages go")
    rate_limit_retries: int = Field(2, ge=0, le=5)


class FeedsPlatform(Strict):
    user_agent: str = "mentionwatch/0.1 (+https://github.com/mentionwatch/mentionwatch)"
    connect_timeout: Duration = timedelta(seconds=3.05)
    read_timeout: Duration = timedelta(seconds=15)
    max_bytes: int = Field(5_000_000, gt=0, description="A bigger body is refused (gzip bombs too)")
    max_entries: int = Field(500, gt=0)


class ClassifierConfig(Strict):
    kind: Literal["lexicon", "transformer"] = "lexicon"
    batch_size: int = Field(32, gt=0, le=1024)


class DaemonConfig(Strict):
    process_interval: Duration = Field(timedelta(seconds=5), description="How often classify/route/send runs")
    jitter: float = Field(0.1, ge=0, le=1, description="Share of each source's interval added at random")
    workers: int = Field(8, gt=0, le=64)
    shutdown_grace: Duration = timedelta(seconds=4)


class FeedSource(Strict):
    type: Literal["feed"]
    name: str = Field(pattern=_SLUG)
    url: str
    interval: Duration = timedelta(minutes=15)
    require_match: bool = Field(True, description="False: every entry is this brand's mention (e.g. Google Alerts)")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/]+", url):
            raise ValueError("expected an http:// or https:// URL")
        return url

    @field_validator("interval")
    @classmethod
    def _sane_interval(cls, interval: timedelta) -> timedelta:
        if interval < timedelta(seconds=1):
            raise ValueError("expected an interval of at least 1s")
        return interval


# Each connector adds its source model here; the `type` key picks the model.
Source = Annotated[Union[FeedSource], Field(discriminator="type")]


class TeamAccounts(Strict):
    """The brand's own accounts: their replies answer a mention, their posts are never alerted on."""

    reddit: list[str] = Field([], description="Reddit usernames, without u/")
    x: list[str] = Field([], description="X handles of the team, with or without @")


def _prefixed(prefix: str, values: list[str]) -> list[str]:
    """Accept `acme` or `@acme` (resp. `#acme`); store the prefixed form."""
    out = []
    for value in values:
        bare = value.strip().lstrip(prefix)
        if not bare or re.search(r"\s", bare):
            raise ValueError(f"expected {prefix}name without spaces")
        out.append(prefix + bare)
    return out


class Brand(Strict):
    names: list[str] = Field(min_length=1, description="Names and product names, matched as whole words")
    aliases: list[str] = []
    handles: list[str] = []
    hashtags: list[str] = []
    domains: list[str] = []
    exclude: list[str] = Field([], description="Phrases that make a match not about this brand")
    slack_channel: str
    reply_within: Duration = timedelta(hours=4)
    team: TeamAccounts = TeamAccounts()
    sources: list[Source] = []

    @field_validator("handles")
    @classmethod
    def _handles(cls, values: list[str]) -> list[str]:
        return _prefixed("@", values)

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, values: list[str]) -> list[str]:
        return _prefixed("#", values)

    @field_validator("names", "aliases", "exclude")
    @classmethod
    def _not_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("expected non-empty phrases")
        return values

    @field_validator("domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            host = value.strip().lower().replace("[.]", ".")
            if not re.match(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$", host):
                raise ValueError("expected bare domains such as acme.io")
            out.append(host)
        return out

    @model_validator(mode="after")
    def _unique_source_names(self) -> "Brand":
        names = [s.name for s in self.sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"each source name only once per brand; repeated: {', '.join(duplicates)}")
        return self

    def terms(self) -> dict[str, list[str]]:
        return {"name": self.names + self.aliases, "handle": self.handles, "hashtag": self.hashtags,
                "domain": self.domains}


class Settings(Strict):
    storage: StorageConfig = StorageConfig()
    slack: SlackConfig
    classifier: ClassifierConfig = ClassifierConfig()
    daemon: DaemonConfig = DaemonConfig()
    feeds: FeedsPlatform = FeedsPlatform()
    brands: dict[Annotated[str, Field(pattern=_SLUG)], Brand] = Field(min_length=1)

    def sources(self) -> dict[str, tuple[str, Source]]:
        """Every configured source by id (`brand/name`), with its brand."""
        return {f"{brand}/{src.name}": (brand, src) for brand, b in self.brands.items() for src in b.sources}


SECRET_FIELDS = frozenset(
    name for model in (SlackConfig, StorageConfig) for name, f in model.model_fields.items()
    if f.annotation is SecretStr
)


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int
    path: str
    value: str
    expected: str
    warning: bool = False

    def __str__(self) -> str:
        prefix = "warning: " if self.warning else ""
        return f"{self.file}:{self.line}: {prefix}{self.path or '(top)'}: {self.value}: {self.expected}"


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
        elif i == len(loc) - 1 and isinstance(node, dict):
            return path + (part,), loaded.lines.get(path, 1)
    return path, loaded.lines.get(path, 1)


def _problems_from_validation(exc: ValidationError, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        path, line = _locate(err["loc"], loaded)
        secret = bool(path) and (path[-1] in SECRET_FIELDS or any(p[:len(path)] == path for p in loaded.from_env))
        dotted = ".".join(str(p) for p in path)
        if err["type"] == "missing":
            value, expected = "missing", "a value is required"
        elif err["type"] == "extra_forbidden":
            value, expected = _show(path[-1], False), "unknown key (check spelling; see config.yaml for the keys)"
        else:
            value = _show(err.get("input"), secret)
            expected = err["msg"].removeprefix("Value error, ")
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
    return out


def _environment(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    url = settings.storage.url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        directory = FsPath(url.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not directory.is_dir() or not os.access(directory, os.W_OK):
            return [ConfigProblem(file, loaded.lines.get(("storage", "url"), 1), "storage.url", repr(url),
                                  f"a writable directory ({directory} is missing or read-only)")]
    return []


def load_settings(path: str | os.PathLike, env: Mapping[str, str] | None = None,
                  check_environment: bool = True) -> tuple[Settings, list[ConfigProblem]]:
    """Load and check a config file; raises ConfigError with every problem; returns warnings."""
    file = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, 0, "", repr(file), f"a readable file ({exc.strerror})")]) from None
    loaded = load_yaml(text, env)
    problems = [ConfigProblem(file, e.line, ".".join(map(str, e.path)), _show(e.value, False), e.expected)
                for e in loaded.errors]
    if loaded.data is None:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    if not isinstance(loaded.data, dict):
        problems.append(ConfigProblem(file, 1, "", "(not a mapping)", "a mapping of settings at the top level"))
        raise ConfigError(problems)
    try:
        settings = Settings.model_validate(loaded.data)
    except ValidationError as exc:
        problems += _problems_from_validation(exc, loaded, file)
        raise ConfigError(sorted(problems, key=lambda p: p.line)) from None
    if check_environment:
        problems += _environment(settings, loaded, file)
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return settings, _warnings(settings, loaded, file)
