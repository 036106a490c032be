"""The soap probe against a real aiohttp target on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
from aiohttp import web
from probe_servers import NOW, bomb, context, endless, serve, settings, silent_server

from monitor.probes import PROBES
from monitor.probes.base import Reason
from monitor.probes.soap import SoapCheck, SoapProbe

S11 = "http://schemas.xmlsoap.org/soap/envelope/"
S12 = "http://www.w3.org/2003/05/soap-envelope"
REQUEST = f'<s:Envelope xmlns:s="{S11}"><s:Body><track>6A0</track></s:Body></s:Envelope>'
ANSWER = (
    '<?xml version="1.0"?><s:Envelope xmlns:s="{ns}"><s:Body>'
    '<t:trackResponse xmlns:t="urn:tracking"><t:status>{status}</t:status>'
    "<t:event/><t:event/></t:trackResponse></s:Body></s:Envelope>"
)
FAULT11 = (
    f'<s:Envelope xmlns:s="{S11}"><s:Body><s:Fault><faultcode>s:Server</faultcode>'
    "<faultstring>Tracking backend unavailable</faultstring></s:Fault></s:Body></s:Envelope>"
)
FAULT12 = (
    f'<e:Envelope xmlns:e="{S12}"><e:Body><e:Fault><e:Code><e:Value>e:Receiver</e:Value>'
    '</e:Code><e:Reason><e:Text xml:lang="en">Label printer offline</e:Text></e:Reason>'
    "</e:Fault></e:Body></e:Envelope>"
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    '<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
    '<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">'
    '<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">'
    '<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">'
    '<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">'
    f']><s:Envelope xmlns:s="{S11}"><s:Body><t:status xmlns:t="urn:tracking">&lol9;'
    "</t:status></s:Body></s:Envelope>"
)
NAMESPACES = {"t": "urn:tracking"}
STATUS_OK = {"//t:status/text()": "OK"}


def soap_check(url: str, **values: Any) -> SoapCheck:
    """A validated soap check posting REQUEST unless told otherwise."""
    values.setdefault("envelope", REQUEST)
    values.setdefault("namespaces", NAMESPACES)
    return SoapCheck.model_validate(settings(type="soap", url=url, **values))


def xml(text: str, status: int = 200) -> web.Response:
    """An XML answer."""
    return web.Response(text=text, status=status, content_type="text/xml")


async def track11(request: web.Request) -> web.Response:
    """A SOAP 1.1 service: checks the content type, SOAPAction and envelope."""
    body = await request.text()
    good = (
        request.content_type == "text/xml"
        and request.headers.get("SOAPAction") == '"urn:track"'
        and "<track>6A0</track>" in body
    )
    return xml(ANSWER.format(ns=S11, status="OK" if good else "BAD-REQUEST"))


async def track12(request: web.Request) -> web.Response:
    """A SOAP 1.2 service: the action travels in the content type."""
    good = request.headers.get("Content-Type", "").startswith(
        'application/soap+xml; charset=utf-8; action="urn:track"'
    )
    return xml(ANSWER.format(ns=S12, status="OK" if good else "BAD-REQUEST"))


async def late(request: web.Request) -> web.Response:
    """A SOAP 1.1 answer whose status is not OK."""
    return xml(ANSWER.format(ns=S11, status="LATE"))


@pytest.fixture
async def base() -> AsyncIterator[str]:
    """The base URL of the running SOAP target."""
    app = web.Application()
    app.router.add_post("/track11", track11)
    app.router.add_post("/track12", track12)
    app.router.add_post("/late", late)
    app.router.add_post("/fault200", fixed(FAULT11, 200))
    app.router.add_post("/fault500", fixed(FAULT11, 500))
    app.router.add_post("/fault12", fixed(FAULT12, 500))
    app.router.add_post("/laughs", fixed(LAUGHS, 200))
    app.router.add_post("/broken", fixed("<s:Envelope", 200))
    app.router.add_post("/html503", fixed("<html><p>down", 503))
    app.router.add_post("/bomb", bomb)
    app.router.add_post("/endless", endless)
    async with serve(app) as url:
        yield url


def fixed(text: str, status: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler always giving the same XML answer."""

    async def handler(request: web.Request) -> web.Response:
        return xml(text, status)

    return handler


@pytest.fixture
async def probe() -> AsyncIterator[SoapProbe]:
    """A probe closed after the test."""
    instance = SoapProbe(context())
    yield instance
    await instance.close()


def test_soap_is_registered_with_its_settings_and_factory() -> None:
    """The registry maps ``soap`` to this module's settings model and probe."""
    assert PROBES["soap"].settings is SoapCheck
    assert isinstance(PROBES["soap"].factory(context()), SoapProbe)


async def test_soap11_answer_matching_xpath_is_ok(base: str, probe: SoapProbe) -> None:
    """SOAP 1.1 sends text/xml with a quoted SOAPAction; a matching XPath passes."""
    check = soap_check(f"{base}/track11", action="urn:track", expect={"xpath": STATUS_OK})
    result = await probe.run(check, NOW)
    assert result.ok, result.detail
    assert {"connect", "processing", "transfer"} <= set(result.phases)


async def test_soap12_sends_action_in_content_type(base: str, probe: SoapProbe) -> None:
    """SOAP 1.2 sends application/soap+xml with action=...; its envelope is understood."""
    check = soap_check(
        f"{base}/track12", version="1.2", action="urn:track", expect={"xpath": STATUS_OK}
    )
    assert (await probe.run(check, NOW)).ok


async def test_xpath_mismatch_names_expression_and_value(base: str, probe: SoapProbe) -> None:
    """A different value fails with xpath_mismatch quoting what was seen."""
    result = await probe.run(soap_check(f"{base}/late", expect={"xpath": STATUS_OK}), NOW)
    assert result.reason is Reason.XPATH_MISMATCH
    assert result.detail == "//t:status/text() is 'LATE', expected 'OK'"


async def test_xpath_matching_nothing_fails(base: str, probe: SoapProbe) -> None:
    """An expression that selects nothing fails with xpath_mismatch."""
    check = soap_check(f"{base}/late", expect={"xpath": {"//t:parcel": "6A0"}})
    result = await probe.run(check, NOW)
    assert (result.reason, result.detail) == (Reason.XPATH_MISMATCH, "//t:parcel matched nothing")


async def test_xpath_numbers_compare_as_numbers(base: str, probe: SoapProbe) -> None:
    """``count(...)`` against an integer expectation passes."""
    check = soap_check(f"{base}/late", expect={"xpath": {"count(//t:event)": 2}})
    assert (await probe.run(check, NOW)).ok


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/fault200", "SOAP fault s:Server: Tracking backend unavailable (status 200)"),
        ("/fault500", "SOAP fault s:Server: Tracking backend unavailable (status 500)"),
        ("/fault12", "SOAP fault e:Receiver: Label printer offline (status 500)"),
    ],
)
async def test_fault_in_any_status_fails_with_soap_fault(
    base: str, probe: SoapProbe, path: str, detail: str
) -> None:
    """A Fault fails with soap_fault and its code and text, whether the status is 200 or 500."""
    result = await probe.run(soap_check(f"{base}{path}", expect={"xpath": STATUS_OK}), NOW)
    assert (result.reason, result.detail) == (Reason.SOAP_FAULT, detail)


async def test_billion_laughs_fails_cleanly_as_unsafe_xml(base: str, probe: SoapProbe) -> None:
    """An entity bomb is never expanded: protocol, "unsafe or invalid XML", in little CPU time."""
    started = time.process_time()  # the work done, which a busy machine cannot inflate
    result = await probe.run(soap_check(f"{base}/laughs", expect={"xpath": STATUS_OK}), NOW)
    assert result.reason is Reason.PROTOCOL
    assert result.detail.startswith("unsafe or invalid XML")
    assert time.process_time() - started < 1


async def test_broken_xml_fails_with_protocol(base: str, probe: SoapProbe) -> None:
    """A truncated envelope fails with protocol, "unsafe or invalid XML"."""
    result = await probe.run(soap_check(f"{base}/broken"), NOW)
    assert result.reason is Reason.PROTOCOL
    assert result.detail.startswith("unsafe or invalid XML: ")


async def test_non_xml_error_page_fails_with_http_status(base: str, probe: SoapProbe) -> None:
    """An HTML 503 is reported by its status, not as broken XML."""
    result = await probe.run(soap_check(f"{base}/html503"), NOW)
    assert (result.reason, result.detail) == (Reason.HTTP_STATUS, "status 503, expected 200")


@pytest.mark.parametrize("path", ["/bomb", "/endless"])
async def test_oversized_answers_fail_with_too_large(
    base: str, probe: SoapProbe, path: str
) -> None:
    """A gzip bomb or an endless chunked body stops at ``max_body``."""
    result = await probe.run(soap_check(f"{base}{path}", max_body=256 * 1024), NOW)
    assert (result.reason, result.detail) == (Reason.TOO_LARGE, "body larger than 262144 bytes")


async def test_silent_server_fails_with_timeout(probe: SoapProbe) -> None:
    """A server that never answers fails with timeout within the check's timeout."""
    async with silent_server() as port:
        check = soap_check(f"http://127.0.0.1:{port}/", timeout="200ms")
        result = await probe.run(check, NOW)
    assert (result.reason, result.detail) == (Reason.TIMEOUT, "no response within 200ms")


async def test_envelope_file_is_read_at_load(base: str, probe: SoapProbe, tmp_path: Path) -> None:
    """``envelope_file`` is read once, when the check is validated."""
    path = tmp_path / "track.xml"
    path.write_text(REQUEST, encoding="utf-8")
    check = soap_check(
        f"{base}/track11",
        envelope=None,
        envelope_file=str(path),
        action="urn:track",
        expect={"xpath": STATUS_OK},
    )
    path.unlink()
    assert (await probe.run(check, NOW)).ok


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"envelope": None}, "envelope or envelope_file"),
        ({"expect": {"xpath": {"//t:[": "x"}}}, "xpath"),
        ({"action": 'a"b'}, "quotes"),
    ],
)
def test_invalid_soap_settings_are_rejected(values: dict[str, Any], message: str) -> None:
    """No envelope, a malformed XPath or a quote in the action fail validation."""
    with pytest.raises(pydantic.ValidationError, match=message):
        soap_check("http://127.0.0.1/", **values)
