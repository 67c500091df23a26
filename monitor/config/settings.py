"""`Settings`, the whole config file: storage, Slack, classifier, daemon, one section per platform that
has shared settings (from the connector registry), the route tree and the brands."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, create_model, field_validator, model_validator

from connectors.registry import platforms
from monitor.config.brand import Brand, Source
from monitor.config.receivers import RECEIVER_NAME, SLACK, ReceiverBlock
from monitor.config.retention import RetentionConfig
from monitor.config.routes import Route
from monitor.configbase import SLUG, Channel, Duration, Strict
from monitor.core.logs import REDACTOR, secrets_of

SOURCE_TYPES = tuple(p.type for p in platforms())


class StorageConfig(Strict):
    url: str = Field("sqlite:///mentionwatch.db", repr=False,
                     description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://… (may hold a password)")

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "postgresql")):
            raise ValueError("expected a sqlite:///path or postgresql+psycopg://… URL")
        return url


class SlackActors(Strict):
    """Who may press Handled, Snooze, Not relevant and Wrong label (default: members of the alert's channel)."""

    usergroup: str | None = Field(None, pattern=r"^S[A-Z0-9]{2,}$", description="Slack user group id, S…")
    channel: str | None = Field(None, description="Members of this channel may act")


class SlackConfig(Strict):
    token: SecretStr = Field(description="Bot token (xoxb-…), from ${SLACK_BOT_TOKEN}")
    app_token: SecretStr | None = Field(None, description="App-level token (xapp-…) for Socket Mode actions, "
                                                          "from ${SLACK_APP_TOKEN}; without it use the CLI")
    base_url: str = Field("https://slack.com/api/",
                          description="Slack Web API base URL; override for a proxy or a compatible server")
    timeout: Duration = Field(timedelta(seconds=10), description="Per Slack API call")
    ops_channel: Channel | None = Field(None, description="Where source-health messages go")
    rate_limit_retries: int = Field(2, ge=0, le=5, description="429s with a short Retry-After are retried this "
                                    "often; longer ones pause sending")
    channel_messages_per_minute: int = Field(20, ge=0, le=600, description="Top-level messages a channel gets "
                                             "per minute; more go into the thread of the latest (0: no budget)")
    actors: SlackActors = SlackActors()


class ClassifierConfig(Strict):
    kind: Literal["lexicon", "transformer"] = Field("lexicon", description="transformer: the local MiniLM model "
                                                    "(routes on intent, ~700 MB RAM); lexicon: VADER, tiny")
    batch_size: int = Field(32, gt=0, le=1024, description="Texts classified per model call")


class DaemonConfig(Strict):
    process_interval: Duration = Field(timedelta(seconds=5), description="How often classify/route/send runs")
    jitter: float = Field(0.1, ge=0, le=1, description="Share of each source's interval added at random")
    workers: int = Field(8, gt=0, le=64, description="Sources polled at the same time at most")
    shutdown_grace: Duration = Field(timedelta(seconds=4),
                                     description="SIGTERM waits this long for running polls, then exits (nothing is lost)")
    backfill_after: Duration = Field(timedelta(hours=1), description="A source back after a longer outage (or "
                                     "downtime) stores what it finds as backfill: one summary per brand, no "
                                     "alert or escalation per old mention")
    backfill_older_than: Duration = Field(timedelta(minutes=10), description="What such a poll finds that was "
                                          "published longer ago than this is backfill; newer posts alert as usual")
    backfill_wait: Duration = Field(timedelta(seconds=30), description="A brand's backfill summary waits until "
                                    "its sources have found nothing more to backfill for this long")



def _section(p) -> tuple[Any, Any]:
    """A platform's top-level section: a default when its model has one for every field, else None."""
    if p.settings_description is not None:
        return p.settings_model | None, Field(None, description=p.settings_description)
    return p.settings_model, p.settings_model()


# The platforms' sections come first, so the brands' checks see which of them are configured.
PlatformSections = create_model("PlatformSections", __base__=Strict, __module__=__name__,
                                **{p.settings_key: _section(p) for p in platforms() if p.settings_model})


class HttpConfig(Strict):
    """The opt-in HTTP endpoints: /metrics (Prometheus), /healthz and /readyz. Off unless `listen` is set."""

    listen: str | None = Field(None, description="host:port, e.g. 127.0.0.1:9464 (0.0.0.0:9464 in a container)")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str | None) -> str | None:
        if listen is None:
            return None
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected host:port, e.g. 127.0.0.1:9464")
        return listen


class Settings(PlatformSections):
    storage: StorageConfig = Field(StorageConfig(), description="Where mentions, the outbox and cursors are kept")
    slack: SlackConfig = Field(description="The Slack app alerts are posted with")
    classifier: ClassifierConfig = Field(ClassifierConfig(),
                                         description="How mentions are labelled (sentiment, intent, needs reply)")
    daemon: DaemonConfig = Field(DaemonConfig(), description="How `mentionwatch run` schedules polls and sends")
    receivers: dict[Annotated[str, Field(pattern=RECEIVER_NAME)], ReceiverBlock] = Field(
        {}, description="Named receivers a route may name besides `slack` (always there), each with a `type` "
                        "a receiver plug-in in alerts/receivers/ declares")
    http: HttpConfig = HttpConfig()
    retention: RetentionConfig = Field(RetentionConfig(), description="How long stored rows are kept (`prune`)")
    routes: Route = Field(Route(), description="The alert route tree; its root matches every mention")
    brands: dict[Annotated[str, Field(pattern=SLUG)], Brand] = Field(min_length=1,
                                      description="The brands to watch, by id (lowercase slug); at least one")

    @model_validator(mode="after")
    def _known_secrets(self) -> "Settings":
        """Every SecretStr of a config is known to the one redaction from the moment it exists."""
        REDACTOR.update(secrets_of(self))
        return self

    @field_validator("routes")
    @classmethod
    def _root_matches_everything(cls, root: Route) -> Route:
        """Every mention enters at the root; a root `match` or `continue` would silently drop or mislead."""
        if {"match", "continue_"} & root.model_fields_set:
            raise ValueError("the root route matches every mention: move `match`/`continue` into a child "
                             "under routes.routes")
        return root

    @field_validator("receivers")
    @classmethod
    def _slack_is_builtin(cls, receivers: dict[str, ReceiverBlock]) -> dict[str, ReceiverBlock]:
        if SLACK in receivers:
            raise ValueError("`slack` is the built-in Slack receiver: name this one differently")
        return receivers

    @model_validator(mode="after")
    def _known_receivers(self) -> "Settings":
        """A route naming no receiver would lose its alerts (load_settings reports each with its line)."""
        unknown = [f"{path}: {name!r}" for path, name in receiver_names(self.routes) if name not in self.receiver_names]
        if unknown:
            raise ValueError(f"unknown receiver ({', '.join(unknown)}); expected one of "
                             f"{', '.join(sorted(self.receiver_names))}")
        return self

    @model_validator(mode="after")
    def _retention_keeps_spike_baselines(self) -> "Settings":
        """Spike detection reads `baseline` of raw mentions: pruning inside it would fake a quiet past."""
        short = [f"brands.{b}.spikes.baseline ({brand.spikes.baseline.days}d)" for b, brand in self.brands.items()
                 if brand.spikes.enabled and brand.spikes.baseline > self.retention.mentions]
        if short:
            raise ValueError(f"retention.mentions ({self.retention.mentions.days}d) is shorter than "
                             f"{', '.join(short)}: keep mentions at least as long")
        return self

    @property
    def receiver_names(self) -> set[str]:
        return {SLACK, *self.receivers}

    @field_validator("brands")
    @classmethod
    def _platform_checks(cls, brands: dict[str, Brand], info: ValidationInfo) -> dict[str, Brand]:
        """Each platform's own check of its sources against its section (credentials present, …)."""
        for p in platforms():
            if p.check is not None:
                p.check(brands, info.data)
        return brands

    @model_validator(mode="after")
    def _stamp_owners(self) -> "Settings":
        """Each source learns its brand: the one place a source is mapped back to its brand and terms."""
        for brand_id, brand in self.brands.items():
            for source in brand.sources:
                source._brand = brand_id
        return self

    def brand_of(self, source) -> tuple[str, "Brand"]:
        """The brand a configured source is listed under, by its stamp: identical blocks under different
        brands are different sources (a stamped source only equals a block of its own brand)."""
        brand_id = getattr(source, "brand_id", None)
        if brand_id in self.brands and source in self.brands[brand_id].sources:
            return brand_id, self.brands[brand_id]
        raise ValueError(f"source {getattr(source, 'name', source)!r} belongs to no brand of these settings")

    def sources(self) -> dict[str, tuple[str, Source]]:
        """Every configured source by id (`brand/name`), with its brand."""
        return {f"{brand}/{src.name}": (brand, src) for brand, b in self.brands.items() for src in b.sources}


def receiver_names(root: Route) -> list[tuple[str, str]]:
    """Every `receiver` the route tree names, with its key path (routes.routes.0.receiver)."""
    out: list[tuple[str, str]] = []

    def walk(route: Route, path: str) -> None:
        if route.receiver is not None:
            out.append((f"{path}.receiver", route.receiver))
        for i, child in enumerate(route.routes):
            walk(child, f"{path}.routes.{i}")

    walk(root, "routes")
    return out


SECRET_FIELDS = frozenset(
    name for model in (SlackConfig, StorageConfig, *(p.settings_model for p in platforms() if p.settings_model))
    for name, f in model.model_fields.items()
    if f.annotation is SecretStr
)
