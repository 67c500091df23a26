"""One module (or package) per platform. Each connector knows its platform and nothing about brands'
routing or Slack.

A platform module declares `PLUGIN = registry.Platform(...)`: its config models (built from
`monitor.configbase`), its team-account format, its display name and its connector factory.
`connectors.registry` finds every plugin at import time; `monitor.config` builds the source union and
the platform sections of `Settings` from it, alert texts name platforms from it, and the pipeline
builds connectors with `registry.make_connector(source, settings, store, clock)`.

A connector offers `fetch(cursor) -> FetchResult`, raising `monitor.core.failures.SourceFailure` for
any failure. Mentions, cursors and gaps travel in the FetchResult; a connector uses the store only for
its platform's bookkeeping (usage counters such as a monthly read budget). It takes the pipeline's
clock at construction.

A connector that can see the brand team's replies also offers
`find_team_replies(awaiting: list[StoredMention]) -> list[TeamReply]`; the pipeline calls it after a
successful poll with the stored mentions of its platform that still wait for an answer.
"""
