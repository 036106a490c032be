"""The http probe's settings beyond status and body_contains, against a real aiohttp app."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import trustme
from aiohttp import web
from probe_servers import NOW, ca_file, context, serve, server_context, settings

from monitor.probes.base import Reason
from monitor.probes.http import HttpCheck, HttpProbe

PASSWORD = "pa55-w0rd-never-shown"
TOKEN = "t0ken-never-shown"
DOCUMENT = {"status": "OK", "count": 250, "items": [1, 2, 3], "empty": [], "code": "KO"}


def http_check(url: str, **values: Any) -> HttpCheck:
    """A validated http check."""
    return HttpCheck.model_validate(settings(type="http", url=url, **values))


async def document(request: web.Request) -> web.Response:
    """A JSON document with a version header."""
    return web.json_response(DOCUMENT, headers={"X-Version": "2.3.1"})


async def echo(request: web.Request) -> web.Response:
    """Repeat the method, body and Authorization header."""
    auth = request.headers.get("Authorization", "-")
    return web.Response(text=f"{request.method} {await request.text()} auth={auth}")


async def guarded(request: web.Request) -> web.Response:
    """200 only with the expected basic credentials or bearer token."""
    basic = "Basic " + base64.b64encode(f"probe:{PASSWORD}".encode()).decode()
    ok = request.headers.get("Authorization") in (basic, f"Bearer {TOKEN}")
    return web.Response(status=200 if ok else 401, text="in" if ok else "denied")


async def redirect(request: web.Request) -> web.Response:
    """Send the client to /document."""
    raise web.HTTPFound("/document")


async def loop(request: web.Request) -> web.Response:
    """Redirect to itself forever."""
    raise web.HTTPFound("/loop")


@pytest.fixture
async def base() -> AsyncIterator[str]:
    """The base URL of the running target."""
    app = web.Application()
    app.router.add_get("/document", document)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/guarded", guarded)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    async with serve(app) as url:
        yield url


@pytest.fixture
async def probe() -> AsyncIterator[HttpProbe]:
    """A probe closed after the test."""
    instance = HttpProbe(context())
    yield instance
    await instance.close()


def secret_file(folder: Path, name: str, value: str) -> str:
    """Write a secret file the way an operator would (with a final newline)."""
    path = folder / name
    path.write_text(value + "\n", encoding="utf-8")
    return str(path)


async def test_body_file_is_read_at_load_and_sent(
    base: str, probe: HttpProbe, tmp_path: Path
) -> None:
    """``body_file`` is read when the check is validated and sent as the request body."""
    body = tmp_path / "request.json"
    body.write_text('{"dryRun": true}', encoding="utf-8")
    check = http_check(
        f"{base}/echo", method="POST", body_file=str(body), expect={"body_contains": "dryRun"}
    )
    body.unlink()  # already read: the file is not needed at run time
    assert (await probe.run(check, NOW)).ok


def test_body_and_body_file_together_are_rejected(tmp_path: Path) -> None:
    """Two sources for one body are a settings error."""
    path = secret_file(tmp_path, "b", "x")
    with pytest.raises(pydantic.ValidationError, match="body or body_file"):
        http_check("http://127.0.0.1/", body="x", body_file=path)


async def test_basic_auth_from_password_file_is_sent_and_never_shown(
    base: str, probe: HttpProbe, tmp_path: Path
) -> None:
    """Basic credentials come from a file, open the door, and appear in no repr or detail."""
    auth = {"basic": {"username": "probe", "password_file": secret_file(tmp_path, "p", PASSWORD)}}
    check = http_check(f"{base}/guarded", auth=auth)
    assert (await probe.run(check, NOW)).ok
    wrong = {"basic": {"username": "other", "password_file": auth["basic"]["password_file"]}}
    failed = await probe.run(http_check(f"{base}/guarded", auth=wrong), NOW)
    assert failed.reason is Reason.HTTP_STATUS and failed.detail == "status 401, expected 200"
    for text in (repr(check), str(check.model_dump()), failed.detail):
        assert PASSWORD not in text


async def test_bearer_token_from_file_is_sent(base: str, probe: HttpProbe, tmp_path: Path) -> None:
    """``bearer_file`` becomes ``Authorization: Bearer <token>``, kept out of the repr."""
    auth = {"bearer_file": secret_file(tmp_path, "t", TOKEN)}
    check = http_check(f"{base}/guarded", auth=auth)
    assert (await probe.run(check, NOW)).ok
    assert TOKEN not in repr(check)


def test_auth_and_authorization_header_together_are_rejected(tmp_path: Path) -> None:
    """Two ways of authenticating at once are a settings error."""
    auth = {"bearer_file": secret_file(tmp_path, "t", TOKEN)}
    with pytest.raises(pydantic.ValidationError, match="not both"):
        http_check("http://127.0.0.1/", auth=auth, headers={"Authorization": "Basic x"})


def test_unreadable_secret_file_is_a_settings_error(tmp_path: Path) -> None:
    """A missing password file fails validation, naming the file but no secret."""
    with pytest.raises(pydantic.ValidationError, match="cannot read"):
        http_check("http://127.0.0.1/", auth={"bearer_file": str(tmp_path / "missing")})


async def test_redirects_are_followed_by_default(base: str, probe: HttpProbe) -> None:
    """A 302 to a healthy page is followed and the final answer judged."""
    check = http_check(f"{base}/redirect", expect={"json": {"$.status": "OK"}})
    assert (await probe.run(check, NOW)).ok


async def test_unfollowed_redirect_is_judged_against_expected_status(
    base: str, probe: HttpProbe
) -> None:
    """With ``follow_redirects: false`` the 3xx itself must be in ``expect.status``."""
    failed = await probe.run(http_check(f"{base}/redirect", follow_redirects=False), NOW)
    assert failed.reason is Reason.HTTP_STATUS and failed.detail == "status 302, expected 200"
    check = http_check(f"{base}/redirect", follow_redirects=False, expect={"status": [302]})
    assert (await probe.run(check, NOW)).ok


async def test_redirect_loop_fails_with_http_status_naming_the_loop(
    base: str, probe: HttpProbe
) -> None:
    """A page redirecting to itself stops after ``max_redirects`` and says so."""
    result = await probe.run(http_check(f"{base}/loop", max_redirects=3), NOW)
    assert result.reason is Reason.HTTP_STATUS
    assert result.detail == "redirect loop: still redirected (302) after 3 redirects"


@pytest.mark.parametrize(
    ("expect", "reason", "detail"),
    [
        ({"body_not_contains": '"KO"'}, Reason.BODY_MISMATCH, "body contains '\"KO\"'"),
        ({"body_not_contains": "error"}, None, ""),
        ({"body_regex": r'"count": \d+'}, None, ""),
        ({"body_regex": r"parcel\d"}, Reason.BODY_MISMATCH, "body does not match 'parcel\\\\d'"),
        ({"headers": {"X-Version": r"^2\."}}, None, ""),
        (
            {"headers": {"x-version": r"^3\."}},
            Reason.HEADER_MISMATCH,
            "header x-version is '2.3.1', not matching '^3\\\\.'",
        ),
        ({"headers": {"X-Trace": "."}}, Reason.HEADER_MISMATCH, "header X-Trace missing"),
    ],
)
async def test_body_and_header_assertions_name_what_failed(
    base: str, probe: HttpProbe, expect: dict[str, Any], reason: Reason | None, detail: str
) -> None:
    """Each body or header assertion passes, or fails naming itself and what was seen."""
    result = await probe.run(http_check(f"{base}/document", expect=expect), NOW)
    assert (result.reason, result.detail) == (reason, detail)


@pytest.mark.parametrize(
    ("path", "want", "detail"),
    [
        ("$.count", "< 300", None),
        ("$.count", "< 200", "$.count is 250, expected < 200"),
        ("$.count", ">= 250", None),
        ("$.status", "!= KO", None),
        ("$.code", "!= KO", "$.code is 'KO', expected != 'KO'"),
        ("$.status", "< 3", "$.status is 'OK', expected < 3"),
        ("$.status", {"exists": True}, None),
        ("$.error", {"exists": False}, None),
        ("$.error", {"exists": True}, "$.error missing, expected to exist"),
        ("$.code", {"exists": False}, "$.code is 'KO', expected absent"),
        ("$.items", {"len": 3}, None),
        ("$.items", {"len": "> 0"}, None),
        ("$.empty", {"len": "> 0"}, "$.empty has length 0, expected > 0"),
        ("$.count", {"len": 1}, "$.count is 250, which has no length"),
        ("$.items[1]", 2, None),
        ("$.missing", 2, "$.missing missing"),
    ],
)
async def test_json_assertions_compare_and_name_what_was_seen(
    base: str, probe: HttpProbe, path: str, want: Any, detail: str | None
) -> None:
    """Equality, comparisons, exists and len each pass or fail with a telling detail."""
    result = await probe.run(http_check(f"{base}/document", expect={"json": {path: want}}), NOW)
    if detail is None:
        assert result.ok, result.detail
    else:
        assert (result.reason, result.detail) == (Reason.JSON_MISMATCH, detail)


@pytest.mark.parametrize(
    "want", ["< abc", {"len": "> x"}, {"len": -1}, {"exists": "yes"}, {"len": True}]
)
def test_malformed_json_assertion_is_rejected_by_the_settings(want: Any) -> None:
    """A comparison without a number, or a bad len/exists, fails validation."""
    with pytest.raises(pydantic.ValidationError):
        http_check("http://127.0.0.1/", expect={"json": {"$.a": want}})


def test_malformed_header_regex_is_rejected_by_the_settings() -> None:
    """An invalid regular expression for a header fails validation."""
    with pytest.raises(pydantic.ValidationError, match="regular expression"):
        http_check("http://127.0.0.1/", expect={"headers": {"X-A": "("}})


async def test_https_with_ca_file_is_ok_and_reports_certificate_expiry(
    probe: HttpProbe, tmp_path: Path
) -> None:
    """A private CA named by ``ca_file`` is trusted, and the peer's notAfter is reported."""
    authority = trustme.CA()
    not_after = dt.datetime(2031, 5, 17, 12, 0, tzinfo=dt.UTC)
    leaf = authority.issue_cert("127.0.0.1", not_after=not_after)
    app = web.Application()
    app.router.add_get("/document", document)
    async with serve(app, server_context(leaf)) as url:
        check = http_check(f"{url}/document", ca_file=ca_file(authority, tmp_path))
        result = await probe.run(check, NOW)
        plain = await probe.run(http_check(f"{url}/document"), NOW)
    assert result.ok, result.detail
    assert result.cert_not_after == not_after.timestamp()
    assert plain.reason is Reason.TLS  # the system store does not know the private CA


def test_every_reason_is_documented_in_the_reference_table() -> None:
    """Each Reason value has its own row in docs/configuration.md's reasons table."""
    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    table = (
        doc.read_text(encoding="utf-8")
        .split("| reason | when | detail looks like |", 1)[1]
        .split("\n\n", 1)[0]
    )
    rows = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert {reason.value for reason in Reason} <= rows
