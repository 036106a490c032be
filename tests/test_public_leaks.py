"""Nothing internal reaches the public side: not a hostname, an IP, a URL token or a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from tests.status_scene import HOSTNAME, PRIVATE_IP, SECRETS, TRACEBACK, URL_TOKEN, status_scene
from tests.waiting import until


async def test_failure_details_never_reach_public_pages_feed_api_or_metrics(tmp_path: Path) -> None:
    """The operator side holds every secret; no public document shows any of them."""
    async with status_scene(tmp_path, time.time()) as scene:
        engine = scene.daemon.engine
        incident = engine.incident(scene.incident_id)
        # The operator side knows every secret, so the test would catch a leak of any.
        assert incident is not None and HOSTNAME in incident.detail
        assert PRIVATE_IP in incident.detail
        await until(lambda: TRACEBACK in engine.states["edi-gw"].detail)
        assert URL_TOKEN in str(scene.daemon.config.checks[0].model_dump())
        paths = [
            "/", "/status", "/?lang=en", f"/incidents/{scene.incident_id}",
            f"/incidents/{scene.resolved_id}", "/incidents/unknown", "/badge/tracking.svg",
            "/badge/unknown.svg", "/feed.atom", "/feed.atom?lang=en", "/api/v1/status",
            "/api/v1/status/history", "/api/v1/incidents",
            f"/api/v1/incidents/{scene.incident_id}", f"/api/v1/incidents/{scene.resolved_id}",
            "/api/v1/incidents/unknown", "/metrics", "/healthz", "/static/status.css",
        ]  # fmt: skip
        async with aiohttp.ClientSession() as session:
            for path in paths:
                async with session.get(scene.base_url + path) as response:
                    body = await response.text()
                    assert response.status in (200, 404), path
                    leaked = [s for s in SECRETS if s.lower() in body.lower()]
                    assert leaked == [], f"{path} shows {leaked}"
