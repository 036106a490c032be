"""The daemon's own face (monitor/web/app.py): /metrics rendered once for every scrape at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import aiohttp
from aiohttp import web
from probe_servers import serve
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.runtime.metrics import Metrics
from monitor.web.app import build_app

SCRAPES = 20


class HeldCollector(Collector):
    """A collector that renders only once released, as a slow one would, and counts renderings."""

    def __init__(self) -> None:
        self.renderings = 0
        self.release = threading.Event()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge whose value is the number of this rendering."""
        self.renderings += 1
        number = self.renderings
        self.release.wait(timeout=30)  # in the rendering thread: the scrapes pile up meanwhile
        yield GaugeMetricFamily("test_rendering", "which rendering this is", value=number)


async def test_scrapes_at_once_share_one_rendering_and_a_later_one_is_fresh() -> None:
    """Twenty overlapping scrapes get one rendering's body; the next scrape renders anew."""
    metrics = Metrics()
    held = HeldCollector()
    metrics.registry.register(held)
    app = build_app(metrics, lambda: {"status": "ok"})
    arrived = 0

    @web.middleware
    async def count(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        nonlocal arrived
        arrived += 1  # the handler runs on to its wait in this same step
        return await handler(request)

    app.middlewares.append(count)
    async with serve(app) as base, aiohttp.ClientSession() as session:

        async def scrape() -> str:
            async with session.get(f"{base}/metrics") as reply:
                assert reply.status == 200
                return await reply.text()

        scrapes = [asyncio.create_task(scrape()) for _ in range(SCRAPES)]
        while arrived < SCRAPES:  # noqa: ASYNC110 - the server's own count, no event for it
            await asyncio.sleep(0.01)
        held.release.set()
        bodies = await asyncio.gather(*scrapes)
        assert held.renderings == 1
        assert len(set(bodies)) == 1 and "test_rendering 1.0" in bodies[0]
        later = await scrape()
    assert held.renderings == 2 and "test_rendering 2.0" in later
