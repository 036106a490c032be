"""Running a real Dispatcher in a test, and reading what it did: outcomes, log, counters."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from monitor.delivery.dispatcher import Dispatcher
from monitor.runtime.metrics import Metrics
from monitor.store.base import Store
from notifiers.base import Notifier
from notifiers.email import EmailNotifier
from tests.builders import notices_config


def outcomes(store: Store, key: str) -> list[str]:
    """The outcomes logged for one notice, in order."""
    return [outcome for _, outcome, _ in store.deliveries(key)]


def logged(store: Store, key: str, count: int) -> Callable[[], bool]:
    """A condition: ``count`` attempts of ``key`` are in the delivery log."""
    return lambda: len(store.deliveries(key)) == count


def counted(metrics: Metrics, outcome: str, kind: str = "first") -> float:
    """forewarn_notices_total for email notices of ``kind`` with this outcome."""
    labels = {"channel": "email", "kind": kind, "outcome": outcome}
    return metrics.registry.get_sample_value("forewarn_notices_total", labels) or 0.0


def email_notifier(port: int, tmp_path: Path) -> EmailNotifier:
    """An SMTP notifier for the server on ``port``."""
    return EmailNotifier(notices_config(port), tmp_path)


@asynccontextmanager
async def dispatching(
    store: Store, notifiers: dict[str, Notifier], metrics: Metrics, **options: Any
) -> AsyncIterator[Dispatcher]:
    """A dispatcher with fast retries, running until the block ends; notifiers closed after."""
    options = {"retry_base": 0.01, "retry_max": 0.05, "rng": random.Random(7), **options}
    dispatcher = Dispatcher(store, notifiers, metrics, **options)
    task = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher
    finally:
        await dispatcher.stop(1.0)
        await task
        for notifier in notifiers.values():
            await notifier.close()
