"""Delivery episodes: a channel that keeps failing is news for ops once, not once per notice."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Outcome(StrEnum):
    """What one send attempt says about its channel."""

    SENT = "sent"
    SETUP = "setup"  # wrong TLS, credentials, a server refusing us: no send can work
    TRANSIENT = "transient"  # unreachable, 4xx: may pass; news once it lasts
    RECIPIENT = "recipient"  # one address refused: says nothing about the channel


@dataclass(frozen=True, slots=True)
class Episode:
    """One channel failing since ``since``; ``told`` once ops heard of it."""

    channel: str
    since: float
    reason: str
    told: bool = False
    urgent: bool = False  # a setup failure: news without waiting


class DeliveryWatch:
    """Per channel, whether sends keep failing, and whether ops were told of it.

    A setup failure is news at once; transient failures after ``alarm_after`` without a
    single success. The first success ends the episode.
    """

    def __init__(self, alarm_after: float) -> None:
        self.alarm_after = alarm_after
        self.episodes: dict[str, Episode] = {}

    def observe(self, channel: str, outcome: Outcome, reason: str, now: float) -> Episode | None:
        """Record one attempt; returns the episode it ended (a recovery), if any."""
        episode = self.episodes.get(channel)
        if outcome is Outcome.SENT:
            return self.episodes.pop(channel, None)
        if outcome is Outcome.RECIPIENT:
            return None
        if episode is None:
            episode = Episode(channel, now, reason)
        urgent = episode.urgent or outcome is Outcome.SETUP
        self.episodes[channel] = replace(episode, reason=reason, urgent=urgent)
        return None

    def due(self, now: float) -> list[Episode]:
        """Episodes that just became news: each is returned once, and marked told."""
        news = [
            e
            for e in self.episodes.values()
            if not e.told and (e.urgent or now - e.since >= self.alarm_after)
        ]
        for episode in news:
            self.episodes[episode.channel] = replace(episode, told=True)
        return news

    def failing(self) -> dict[str, Episode]:
        """Channels ops were told are failing, by channel."""
        return {c: e for c, e in self.episodes.items() if e.told}
