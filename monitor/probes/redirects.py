"""Custom request headers stay with the origin they were written for, across redirects.

aiohttp drops Authorization, Cookie and Proxy-Authorization when a redirect leaves the
origin, but a secret in a custom header (``X-Api-Key``) went along to whatever host the
target redirected to (issue 17). Every header a check sets is dropped on a hop to another
origin; a hop back to the check's own origin carries them again.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from aiohttp.client_middlewares import ClientMiddlewareType
from yarl import URL


def same_origin_headers(url: str, names: Iterable[str]) -> ClientMiddlewareType:
    """A client middleware removing ``names`` from requests to an origin other than ``url``'s."""
    origin = URL(url).origin()
    dropped = tuple(names)

    async def middleware(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        if dropped and request.url.origin() != origin:
            for name in dropped:
                request.headers.popall(name, None)
        return await handler(request)

    return middleware
