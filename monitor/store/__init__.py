"""The `Store` protocol and its backends (SQLite today): incidents, outbox, results."""
