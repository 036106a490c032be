"""The outbox drained through the channels: retries, pacing, delivery episodes."""
