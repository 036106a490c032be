"""/metrics of a daemon on a PostgreSQL: which instance it is, whether it decides, who is live."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from monitor.config.load import Config
from monitor.daemon import Daemon
from monitor.store.opening import instance_id
from tests.conftest import ConfigFactory


async def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the daemon's /metrics, by name and labels."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as reply,
    ):
        assert reply.status == 200
        text = await reply.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_lone_cluster_instance_shows_itself_leading_and_live(
    make_config: ConfigFactory,
    running: Callable[[Config], Awaitable[Daemon]],
    pg_dsn: str,
    quiet_logs: None,
) -> None:
    """Alone on its database it names itself, decides, and counts one live member."""
    config = make_config(daemon_extra=f", database: '{pg_dsn}', location: paris")
    daemon = await running(config)
    samples = await scrape(daemon.port)
    me = instance_id(config.daemon.state_dir)
    info = frozenset({("instance_id", me), ("location", "paris")})
    assert samples[("forewarn_instance_info", info)] == 1
    assert samples[("forewarn_cluster_decider", frozenset())] == 1
    assert samples[("forewarn_cluster_members", frozenset({("state", "live")}))] == 1
    assert samples[("forewarn_cluster_members", frozenset({("state", "silent")}))] == 0
