"""The bottom layer: domain records, label sets, failures, the clock and logging.

Everything else in mentionwatch may import from here; nothing here imports the rest of the project
(tests/test_layers.py fails the build when that changes).
"""
