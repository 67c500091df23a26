"""Reddit's config: one app's credentials and request budget (`reddit:`), and the source blocks."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal, Mapping

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from monitor.configbase import FIRST_POLL_LOOKBACK, SLUG, Duration, Interval, Owned, Strict, http_base_url


class RedditPlatform(Strict):
    """One Reddit app (https://www.reddit.com/prefs/apps): its credentials and the request budget all
    Reddit sources share. Script apps add username/password; a refresh_token works too."""

    client_id: SecretStr = Field(description="The app's id, from ${REDDIT_CLIENT_ID}")
    client_secret: SecretStr = Field(description="From ${REDDIT_CLIENT_SECRET}")
    username: str | None = Field(None,
                                 description="With password: log in as this Reddit user (default: app-only, read-only)")
    password: SecretStr | None = Field(None, description="The user's password, from ${VAR}")
    refresh_token: SecretStr | None = Field(None,
                                            description="A refresh token instead of username and password, from ${VAR}")
    user_agent: str = Field("mentionwatch/0.1 (self-hosted brand monitor)", min_length=7,
                            description="Reddit asks for a unique, descriptive one, e.g. with your u/name")
    oauth_url: str = Field("https://oauth.reddit.com", description="Reddit's OAuth API base URL")
    reddit_url: str = Field("https://www.reddit.com", description="Reddit's site base URL (token endpoint)")
    timeout: Duration = Field(timedelta(seconds=10), description="Per request; praw retries a timeout twice")
    max_bytes: int = Field(10_000_000, gt=0, description="A bigger answer is refused (gzip bombs too)")
    requests_per_minute: int = Field(100, gt=0, le=6000, description="Shared by every Reddit source of this app")
    max_wait: Duration = Field(timedelta(seconds=5), description="Longest in-poll wait for the budget; longer "
                               "waits reschedule the poll instead")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="Items older than this are skipped on a "
                                          "listing's first poll (a source's own first_poll_lookback wins)")
    reply_checks_per_poll: int = Field(5, ge=0, le=20, description="Waiting comments whose subtree is read per "
                                       "poll for a deeper team reply (the team's own listings cover the rest)")
    reply_recheck: Duration = Field(timedelta(minutes=10), description="How often one mention's thread is re-checked")

    @field_validator("oauth_url", "reddit_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return http_base_url(url)

    @model_validator(mode="after")
    def _login_complete(self) -> "RedditPlatform":
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together (a script app), or leave both out")
        if self.password and self.refresh_token:
            raise ValueError("use either username/password or refresh_token, not both")
        return self


class RedditSource(Owned):
    """New posts or new comments of subreddits, or Reddit search sorted by new: one listing per
    subreddit (or query), each with its own cursor."""

    type: Literal["reddit"]
    name: str = Field(pattern=SLUG, description="Unique within the brand; the source id is brand/name")
    what: Literal["posts", "comments", "search"] = Field("posts",
                                                         description="posts or comments of `subreddits`, or search")
    subreddits: list[str] = Field([], validate_default=True, description="posts/comments: the subreddits to "
                                  "read; search: restrict the search to these (default: all of Reddit)")
    query: str | None = Field(None, description="search only; default: the brand's names, aliases and domains")
    interval: Interval = Field(timedelta(minutes=2), description="Time between polls")
    require_match: bool = Field(True, description="False: every item is this brand's mention (its own subreddit)")
    first_poll_lookback: Duration | None = Field(None, description="A first poll stores items published this long "
                                                 "ago at most, as backfill (default: reddit.first_poll_lookback, 24 h)")

    @field_validator("subreddits")
    @classmethod
    def _subreddit_names(cls, values: list[str], info: ValidationInfo) -> list[str]:
        out = []
        for value in values:
            bare = re.sub(r"^/?r/", "", value.strip())
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$", bare):
                raise ValueError(f"expected subreddit names such as acmecloud or r/acmecloud, got {value!r}")
            out.append(bare)
        if not out and info.data.get("what", "search") != "search":
            raise ValueError(f"what: {info.data['what']} needs at least one subreddit")
        return out

    @field_validator("query")
    @classmethod
    def _search_only(cls, query: str | None, info: ValidationInfo) -> str | None:
        if query is not None and info.data.get("what") != "search":
            raise ValueError("query is only for what: search")
        if query is not None and not query.strip():
            raise ValueError("expected a non-empty query, or leave it out to search for the brand's terms")
        return query


def check_credentials(brands: Mapping[str, Any], sections: Mapping[str, Any]) -> None:
    """A Reddit source cannot run without the app's credentials (an invalid `reddit:` is reported on its own)."""
    if "reddit" in sections and sections["reddit"] is None:
        needy = [f"{bid}/{s.name}" for bid, b in brands.items() for s in b.sources if s.type == "reddit"]
        if needy:
            raise ValueError(f"no `reddit:` section with client_id and client_secret (from ${{REDDIT_CLIENT_ID}}, "
                             f"${{REDDIT_CLIENT_SECRET}}), which Reddit sources need: {', '.join(needy)}")
