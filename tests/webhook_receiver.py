"""A Slack-like incoming webhook on 127.0.0.1 that records what it is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

TOKEN = "T000/B000/sekr3t"


@dataclass
class Receiver:
    """A Slack-like incoming webhook whose answer the test chooses."""

    url: str = ""
    status: int = 200
    hang: bool = False
    bodies: list[Any] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # the bytes of each body, as signed
    headers: list[dict[str, str]] = field(default_factory=list)


@asynccontextmanager
async def serving() -> AsyncIterator[Receiver]:
    """A real HTTP server recording every JSON body posted to /services/<token>."""
    state = Receiver()
    never = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        state.raw.append(await request.read())
        state.headers.append(dict(request.headers))
        state.bodies.append(await request.json())
        if state.hang:
            await never.wait()
        if 300 <= state.status < 400:
            return web.Response(status=state.status, headers={"Location": "/elsewhere"})
        return web.Response(status=state.status, text="ok")

    app = web.Application()
    app.router.add_post(f"/services/{TOKEN}", hook)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url(f"/services/{TOKEN}"))
        yield state
