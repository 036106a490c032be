"""SOAP probe: POST an envelope over the http machinery, then judge faults and XPaths.

XML is parsed without entities, DTDs or network access; a document with a DOCTYPE (which
SOAP forbids, and which is how entity bombs come) fails as "unsafe or invalid XML".
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Annotated, Any, Literal

from lxml import etree
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from monitor.core.fields import CheckBase, Duration, HttpUrl, StrictModel
from monitor.probes.assertions import judge_status
from monitor.probes.base import ProbeContext, ProbeKind, ProbeResult, Reason
from monitor.probes.certs import CaFile
from monitor.probes.files import ReadableFile
from monitor.probes.http1 import ProbeFailure
from monitor.probes.httpcheck import (
    HttpAuth,
    MaxBody,
    check_headers,
    finish,
    one_login,
    request_body,
    with_auth,
)
from monitor.probes.httpcore import HttpClient, Request
from monitor.probes.jsonpath import show
from monitor.probes.outcome import Timeline, Verdict, attempt, short

_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
_UNSAFE = "unsafe or invalid XML"


class SoapExpect(StrictModel):
    """What a healthy SOAP answer looks like."""

    status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=lambda: [200])
    max_latency: Duration | None = None
    xpath: dict[str, str | int | float | bool] = Field(default_factory=dict)


class SoapCheck(CheckBase):
    """Settings of a ``soap`` check."""

    type: Literal["soap"]
    url: HttpUrl
    version: Literal["1.1", "1.2"] = "1.1"
    action: str | None = None
    envelope: str | None = None
    envelope_file: ReadableFile | None = None  # read once at load; relative to checks.yaml
    headers: dict[str, str] = Field(default_factory=dict)
    auth: HttpAuth | None = None
    ca_file: CaFile | None = None
    namespaces: dict[str, str] = Field(default_factory=dict)
    max_body: MaxBody = 1024 * 1024
    expect: SoapExpect = SoapExpect()
    _envelope: bytes = PrivateAttr(default=b"")

    @field_validator("action")
    @classmethod
    def _plain_action(cls, action: str | None) -> str | None:
        if action is not None and any(ch in action for ch in '"\r\n\0'):
            raise ValueError("must not contain quotes or line breaks")
        return action

    @field_validator("auth")
    @classmethod
    def _one_login(cls, auth: HttpAuth | None, info: ValidationInfo) -> HttpAuth | None:
        return one_login(auth, [info.data.get("url")])

    @model_validator(mode="after")
    def _load(self) -> SoapCheck:
        envelope = request_body(self.envelope, self.envelope_file)
        if envelope is None:
            raise ValueError("set envelope or envelope_file")
        self._envelope = envelope
        check_headers(self.headers, self.auth, self.url)
        for path in self.expect.xpath:
            try:
                etree.XPath(path, namespaces=self.namespaces)
            except etree.XPathError as exc:
                raise ValueError(f"xpath {path!r}: {exc}") from None
        return self

    def request(self) -> Request:
        """The POST this check sends: content type and action as its SOAP version wants."""
        if self.version == "1.1":
            soap = {"Content-Type": "text/xml; charset=utf-8"}
            if self.action is not None:
                soap["SOAPAction"] = f'"{self.action}"'
        else:
            action = f'; action="{self.action}"' if self.action is not None else ""
            soap = {"Content-Type": f"application/soap+xml; charset=utf-8{action}"}
        headers = with_auth({**soap, **self.headers}, self.auth)
        return Request("POST", self.url, headers, self._envelope, ca_file=self.ca_file)


def parse_xml(body: bytes) -> Any:
    """The root element, parsed safely; ProbeFailure (protocol) for unsafe or broken XML."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
    )
    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ProbeFailure(Reason.PROTOCOL, short(f"{_UNSAFE}: {exc}")) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ProbeFailure(Reason.PROTOCOL, f"{_UNSAFE}: a DOCTYPE is not allowed in SOAP")
    return root


def find_fault(root: Any, status: int) -> Verdict:
    """soap_fault with the fault's code and text, for SOAP 1.1 or 1.2, whatever the status."""
    fault = root.find(f"{{{_SOAP11}}}Body/{{{_SOAP11}}}Fault")
    if fault is not None:
        code = fault.findtext("faultcode") or "?"
        text = fault.findtext("faultstring") or ""
        return Reason.SOAP_FAULT, short(f"SOAP fault {code}: {text} (status {status})")
    ns = {"s": _SOAP12}
    fault = root.find("s:Body/s:Fault", ns)
    if fault is not None:
        code = fault.findtext("s:Code/s:Value", namespaces=ns) or "?"
        text = fault.findtext("s:Reason/s:Text", namespaces=ns) or ""
        return Reason.SOAP_FAULT, short(f"SOAP fault {code.strip()}: {text} (status {status})")
    return None, ""


def judge_xpath(root: Any, expected: dict[str, Any], namespaces: dict[str, str]) -> Verdict:
    """xpath_mismatch naming the first expression whose value differs from the expected."""
    for path, want in expected.items():
        try:
            found = etree.XPath(path, namespaces=namespaces)(root)
        except etree.XPathError as exc:
            return Reason.XPATH_MISMATCH, short(f"{path} cannot be evaluated: {exc}")
        seen = _xpath_text(found)
        if seen is None:
            return Reason.XPATH_MISMATCH, f"{path} matched nothing"
        wanted = _xpath_text(want)
        if seen != wanted:
            return Reason.XPATH_MISMATCH, f"{path} is {show(seen)}, expected {show(wanted)}"
    return None, ""


def _xpath_text(value: Any) -> str | None:
    """An XPath result as text: the first node's text, a number, or true/false."""
    if isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, str):
        return str(value)  # lxml's smart strings keep their whole tree alive
    if isinstance(value, etree._Element):
        return "".join(value.itertext()).strip()
    return str(value)


class SoapProbe:
    """Runs ``soap`` checks over one shared client."""

    def __init__(self, context: ProbeContext | None = None) -> None:
        """Create the probe; nothing is opened before the first run."""
        self._client = HttpClient(context.resolver if context is not None else None)

    async def run(self, check: SoapCheck, now: float) -> ProbeResult:
        """Send the envelope, then look for a fault, the status, and the XPath values."""
        line = Timeline()
        start = perf_counter()
        deadline = asyncio.get_running_loop().time() + check.timeout

        async def work() -> Verdict:
            async with self._client.send(check.request(), line) as reply:
                body = await reply.read(check.max_body)
                status = reply.status
            wrong_status = judge_status(status, check.expect.status)
            try:
                root = parse_xml(body) if body else None
            except ProbeFailure as failure:  # a broken answer with a bad status: say status
                return wrong_status if wrong_status[0] else (failure.reason, failure.detail)
            if root is not None and (fault := find_fault(root, status))[0] is not None:
                return fault
            if wrong_status[0] is not None:
                return wrong_status
            if root is None:
                return Reason.PROTOCOL, "empty answer, expected a SOAP envelope"
            return judge_xpath(root, check.expect.xpath, check.namespaces)

        verdict = await attempt(work, line, deadline, check.timeout)
        return finish(check.id, now, start, line, verdict, check.expect.max_latency)

    async def close(self) -> None:
        """Stop the client's resolver threads, if they are its own."""
        await self._client.close()


KIND = ProbeKind(settings=SoapCheck, factory=SoapProbe)
