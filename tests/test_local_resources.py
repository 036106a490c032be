"""forewarn out of its own resources: which errors say so, the inconclusive rule, episodes."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import aiohttp
import dns.exception
import dns.message
import dns.resolver
import pytest
from aiohttp.client_reqrep import ConnectionKey

from monitor.notices.exhaustion import Episode, alerts, expire, seen
from monitor.probes.base import ProbeResult, Reason
from monitor.probes.local import LOCAL_ERRNOS, local_errno, local_failure
from monitor.probes.outcome import connect_failure
from monitor.runtime.scheduler import inconclusive_cause
from notifiers.email import EmailChannel
from notifiers.webhook import WebhookChannel

KEY = ConnectionKey("ws.example.net", 443, True, True, None, None, None)


def os_error(number: int) -> OSError:
    """An OSError as the kernel reports it: errno and the system's words."""
    return OSError(number, os.strerror(number))


def caused_by(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised from ``inner``, as a library re-raising would."""
    outer.__cause__ = inner
    return outer


def no_nameservers(inner: BaseException) -> dns.resolver.NoNameservers:
    """dnspython's error when every server failed, each with its own exception."""
    request = dns.message.make_query("ws.example.net", "A")
    errors = [("127.0.0.1", False, 53, inner, None)]
    return dns.resolver.NoNameservers(request=request, errors=errors)


LOCAL_CASES: list[tuple[str, BaseException, int | None]] = [
    ("EMFILE: this process's descriptors", os_error(errno.EMFILE), errno.EMFILE),
    ("ENFILE: the system's descriptors", os_error(errno.ENFILE), errno.ENFILE),
    ("ENOBUFS: kernel buffers", os_error(errno.ENOBUFS), errno.ENOBUFS),
    ("ENOMEM: memory", os_error(errno.ENOMEM), errno.ENOMEM),
    ("EADDRNOTAVAIL: no local port left", os_error(errno.EADDRNOTAVAIL), errno.EADDRNOTAVAIL),
    ("aiohttp wraps it", aiohttp.ClientConnectorError(KEY, os_error(errno.EMFILE)), errno.EMFILE),
    ("raised from it", caused_by(RuntimeError("x"), os_error(errno.ENFILE)), errno.ENFILE),
    ("dnspython's per-server errors", no_nameservers(os_error(errno.EMFILE)), errno.EMFILE),
    ("the target refused", os_error(errno.ECONNREFUSED), None),
    ("the network is unreachable", os_error(errno.ENETUNREACH), None),
    ("the peer reset", os_error(errno.ECONNRESET), None),
    ("a wrapped refusal", aiohttp.ClientConnectorError(KEY, os_error(errno.EHOSTUNREACH)), None),
    # A gaierror's number is an EAI_* code: EAI_SERVICE is -8, never read as an errno.
    ("a resolver error code", socket.gaierror(-errno.ENOEXEC, "Servname not supported"), None),
    ("the words alone are not the signal", OSError("Too many open files"), None),
    ("a server that did not answer", no_nameservers(dns.exception.Timeout()), None),
]


@pytest.mark.parametrize(("case", "exc", "expected"), LOCAL_CASES, ids=[c[0] for c in LOCAL_CASES])
def test_local_exhaustion_is_recognised_by_errno(
    case: str, exc: BaseException, expected: int | None
) -> None:
    """The five local errnos are found however the error is wrapped; others and text are not."""
    assert local_errno(exc) == expected, case


def test_each_local_errno_becomes_the_local_resources_reason_with_its_name() -> None:
    """connect_failure maps every local errno to local_resources, naming it, not the target."""
    for number in LOCAL_ERRNOS:
        reason, detail = connect_failure(os_error(number), "ws.example.net:443")
        assert reason is Reason.LOCAL_RESOURCES
        assert errno.errorcode[number] in detail and "ws.example.net" not in detail
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "x")
    assert connect_failure(refused, "ws.example.net:443")[0] is Reason.CONNECT_REFUSED


def test_a_failed_lookup_is_local_only_when_a_socket_cannot_be_opened_now() -> None:
    """getaddrinfo hides EMFILE: with sockets to spare, a failed lookup stays the target's."""
    hidden = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert local_failure(hidden, resolving=True) is None  # this process has descriptors left
    assert local_failure(hidden) is None


def result(reason: Reason | None, duration_s: float = 0.1) -> ProbeResult:
    """A probe result with this reason (none: healthy)."""
    return ProbeResult.judged("c", 0.0, reason, "", duration_s)


CAUSES = [
    # reason, seconds the loop stalled during a 2 s-timeout run, cause
    (Reason.LOCAL_RESOURCES, 0.0, "local_resources"),
    (Reason.LOCAL_RESOURCES, 1.5, "local_resources"),  # a shortage, whatever the loop did
    (Reason.TIMEOUT, 1.5, "loop_stall"),
    (Reason.TIMEOUT, 0.0, None),
    (Reason.CONNECT_ERROR, 0.0, None),
    (Reason.CONNECT_REFUSED, 1.5, None),
    (None, 1.5, None),
]


@pytest.mark.parametrize(("reason", "stalled", "expected"), CAUSES)
def test_a_local_shortage_is_always_inconclusive_and_other_failures_keep_their_rule(
    reason: Reason | None, stalled: float, expected: str | None
) -> None:
    """local_resources is set aside; a timeout only when the loop stalled; the rest count."""
    assert inconclusive_cause(result(reason, 2.0), stalled, timeout=2.0) == expected


def test_episodes_begin_at_the_first_run_set_aside_and_end_after_a_quiet_spell() -> None:
    """Runs close together are one episode; it ends quiet_s after the last; then a new one."""
    episode, began = seen(None, 100.0)
    assert began and episode == Episode(since=100.0, last_seen=100.0, runs=1)
    steps = [(105.0, False), (110.0, False)]
    for now, expected_began in steps:
        episode, began = seen(episode, now)
        assert began is expected_began
    assert episode == Episode(since=100.0, last_seen=110.0, runs=3)
    assert expire(episode, 169.9, quiet_s=60.0) == (episode, False)
    assert expire(episode, 170.0, quiet_s=60.0) == (None, True)
    assert expire(None, 500.0, quiet_s=60.0) == (None, False)
    assert seen(None, 171.0)[1] is True  # the next shortage is a new episode


def test_ops_hear_of_an_episode_on_every_channel_with_what_failed(tmp_path: Path) -> None:
    """One ops notice per ops channel naming the errno and the first check; none without ops."""
    ops = [
        EmailChannel(type="email", name="oncall", to="oncall@example.net"),
        WebhookChannel(type="webhook", name="chat", url="https://hooks.example.net/x"),
    ]
    first = ProbeResult.judged(
        "tracking-ws", 0.0, Reason.LOCAL_RESOURCES, "out of resources: EMFILE (…)", 0.001
    )
    notices = alerts(ops, first, 1_700_000_000.0)
    assert [(n.channel, n.recipient) for n in notices] == [("email", "oncall"), ("webhook", "chat")]
    assert all("EMFILE" in n.text and "tracking-ws" in n.text for n in notices)
    assert len({n.key for n in notices}) == 2
    assert alerts([], first, 1_700_000_000.0) == []
