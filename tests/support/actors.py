"""Slack users who press buttons in the tests, and the labels of the complaint they act on."""

from __future__ import annotations

from monitor.core.labels import Labels

LABELS = Labels("negative", {"negative": 0.9, "neutral": 0.05, "positive": 0.05}, "complaint",
                {"complaint": 0.8, "question": 0.05, "praise": 0.05, "suggestion": 0.05, "other": 0.05},
                True, 0.9, "test-model")
SAM, KIM, EVE = "U0SAM0001", "U0KIM0001", "U0EVE0001"
