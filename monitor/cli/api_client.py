"""A small synchronous client of the daemon's operator API, for the command line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

FAILED, UNREACHABLE = 1, 3  # exit statuses: refused or failed; the daemon unreachable
TIMEOUT_S = 10.0


class Failure(Exception):
    """One line for stderr and the exit status that goes with it."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would carry the token to wherever they point."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# Proxies are off: the daemon is normally on this host, and a proxy would see the token.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


@dataclass(frozen=True, slots=True)
class Client:
    """The daemon's operator API: where it is, and the token to show it."""

    url: str
    token: str = field(repr=False)
    config: Path = Path("checks.yaml")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request and return its JSON; Failure for an error or no answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        # The scheme was checked to be http(s) when the URL was chosen.
        request = urllib.request.Request(self.url + path, data, headers, method=method)  # noqa: S310
        try:
            with _OPENER.open(request, timeout=TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise Failure(_refusal(exc)) from None
        except (urllib.error.URLError, OSError, HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Failure(
                f"cannot reach {self.url} ({reason}); "
                f"is forewarn running? (forewarn run -c {self.config})",
                UNREACHABLE,
            ) from None
        except ValueError:
            raise Failure(f"{self.url} did not answer with JSON: is it forewarn?") from None


def _refusal(exc: urllib.error.HTTPError) -> str:
    """The daemon's ``{"error": …}`` and status, with a hint for a token problem."""
    try:
        message = str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        message = str(exc.reason)
    hint = ""
    if exc.code == 401:
        hint = "; check the token (--token-file, FOREWARN_TOKEN or daemon.api_tokens_file)"
    return f"{message} (HTTP {exc.code}){hint}"
