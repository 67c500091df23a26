"""Deciding what needs a human (rules), what it looks like (messages) and getting it to Slack once."""
