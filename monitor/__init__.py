"""mentionwatch core: config, storage, matching, pipeline, daemon and CLI."""
