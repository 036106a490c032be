"""Shared by the reliability suite: an HTTP target whose services the test breaks at will."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.reliability.target import Target


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """The target, answering ``ok`` on every path until a test breaks some."""
    state = Target()

    async def endpoint(request: web.Request) -> web.Response:
        if request.path.strip("/").partition("/")[0] in state.broken:
            return web.Response(status=503, text="down")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{path:.*}", endpoint)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/"))
        yield state
