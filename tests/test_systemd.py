"""forewarn under a service manager: sd_notify, watchdog, SIGHUP reload, SIGTERM, one instance.

The daemon runs as a real subprocess (``python -m monitor run``) with ``$NOTIFY_SOCKET`` naming
a datagram socket this test owns, exactly as systemd would set it up; every target is on
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.runtime.logs import REDACTED, redact_secrets
from monitor.runtime.systemd import (
    MIN_STALL_S,
    SystemdNotifier,
    one_line,
    progressing,
    stall_limit,
    supervise,
    watchdog_period,
)
from tests.smtp_server import FailingSmtpServer

ROOT = Path(__file__).resolve().parent.parent
WATCHDOG_USEC = 200_000  # pings every 0.1 s
STOP_WINDOW_S = 0.5  # how long the child stays SIGSTOPped; see test_sigstop_...

Message = dict[str, str]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def target() -> Iterator[int]:
    """A tiny HTTP server on 127.0.0.1 answering 200 to everything (also a TCP target)."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def write_config(path: Path, state: Path, port: int, target: int, extra_checks: str = "") -> None:
    """A checks.yaml with an http and a tcp check on ``target``, probed every 200 ms."""
    path.write_text(
        f"daemon: {{state_dir: '{state}', listen: '127.0.0.1:{port}'}}\n"
        "defaults: {interval: 200ms, timeout: 1s, retry_interval: 100ms}\n"
        "services: [{id: web, name: {en: Web}}]\n"
        "checks:\n"
        f"  - {{id: web-http, service: web, type: http, url: 'http://127.0.0.1:{target}/'}}\n"
        f"  - {{id: web-tcp, service: web, type: tcp, host: 127.0.0.1, port: {target}}}\n"
        + extra_checks,
        encoding="utf-8",
    )


@dataclass
class Listener:
    """The service manager's end of ``$NOTIFY_SOCKET``: records every message with its time."""

    sock: socket.socket
    address: str  # as put in NOTIFY_SOCKET
    seen: list[tuple[float, Message]] = field(default_factory=list)

    def receive(self, timeout_s: float) -> Message | None:
        """The next message, or None if none comes within ``timeout_s``."""
        self.sock.settimeout(max(timeout_s, 0.001))
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        message = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.seen.append((time.monotonic(), message))
        return message

    def wait_for(self, key: str, timeout_s: float = 15.0) -> Message:
        """Skip messages until one carries ``key``; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is not None and key in message:
                return message
        raise AssertionError(f"no {key} within {timeout_s}s; got {[m for _, m in self.seen]}")

    def drain(self) -> list[Message]:
        """Whatever is queued now."""
        drained = []
        while (message := self.receive(0.001)) is not None:
            drained.append(message)
        return drained


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    """A datagram socket bound to a path in tmp_path."""
    path = tmp_path / "notify.sock"
    assert len(str(path)) < 100, "unix socket paths are limited to 108 bytes"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield Listener(sock, str(path))


@dataclass
class Running:
    """A daemon subprocess and where its output goes."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        """Everything it wrote so far, stdout then stderr."""
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def events(self) -> list[dict[str, object]]:
        """Its JSON log lines."""
        lines = self.stdout.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait(self, timeout_s: float = 20.0) -> int:
        """Its exit status."""
        return self.process.wait(timeout=timeout_s)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start ``python -m monitor run`` with a given environment; killed at teardown."""
    started: list[Running] = []

    def start(config: Path, notify: str | None = None, *args: str, **env: str) -> Running:
        n = len(started)
        stdout, stderr = tmp_path / f"stdout{n}.log", tmp_path / f"stderr{n}.log"
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))
        }
        if notify is not None:
            environment["NOTIFY_SOCKET"] = notify
        environment.update(env)
        # Files, not pipes: a daemon blocked on a full pipe would stop pinging for that reason.
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "monitor", *args, "run", "-c", str(config)],
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=err,
            )
        running = Running(process, stdout, stderr)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=10)


def metric(port: int, name: str) -> float:
    """One unlabelled sample from the daemon's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


def test_ready_watchdog_reload_and_stop_in_order(
    tmp_path: Path, target: int, listener: Listener, spawn: Callable[..., Running]
) -> None:
    """READY once serving → WATCHDOG pings → reload (good, then bad) → STOPPING → exit 0."""
    config, port = tmp_path / "checks.yaml", free_port()
    write_config(config, tmp_path / "state", port, target)
    daemon = spawn(config, listener.address, WATCHDOG_USEC=str(WATCHDOG_USEC))

    ready = listener.wait_for("READY")
    # Right after READY the listen port accepts connections: no retry, no sleep.
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert ready["STATUS"] == "2 checks, 0 open incidents, 0 notices pending"
    for _ in range(3):
        listener.wait_for("WATCHDOG", timeout_s=2)

    # A good config: RELOADING (with the monotonic time systemd ≥ 253 wants), then READY.
    write_config(
        config,
        tmp_path / "state",
        port,
        target,
        extra_checks=(
            f"  - {{id: web-tcp2, service: web, type: tcp, host: 127.0.0.1, port: {target}}}\n"
        ),
    )
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    daemon.process.send_signal(signal.SIGHUP)
    reloading = listener.wait_for("RELOADING")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after  # sent between the two
    reloaded = listener.wait_for("READY")
    assert reloaded["STATUS"].startswith("3 checks, ")
    assert metric(port, "forewarn_config_last_reload_successful") == 1

    # A bad config: RELOADING, then READY with the error in STATUS; the old config stays.
    config.write_text(config.read_text() + "bogus: 1\n", encoding="utf-8")
    daemon.process.send_signal(signal.SIGHUP)
    listener.wait_for("RELOADING")
    failed = listener.wait_for("READY")
    assert failed["STATUS"].startswith(f"reload failed: {config}:"), failed
    assert "bogus: unknown key" in failed["STATUS"]
    assert "3 checks" in failed["STATUS"]
    assert metric(port, "forewarn_config_last_reload_successful") == 0
    listener.wait_for("WATCHDOG", timeout_s=2)  # still alive and probing

    daemon.process.send_signal(signal.SIGTERM)
    listener.wait_for("STOPPING")
    assert daemon.wait() == 0
    events = daemon.events()
    names = [e["event"] for e in events]
    assert names.count("reloaded") == 1 and names.count("reload_failed") == 1
    reloaded_event = next(e for e in events if e["event"] == "reloaded")
    assert (reloaded_event["added"], reloaded_event["removed"], reloaded_event["changed"]) == (
        1,
        0,
        0,
    )
    assert names[-1] == "stopped"
    assert "Traceback" not in daemon.output()


def test_abstract_notify_socket(tmp_path: Path, target: int, spawn: Callable[..., Running]) -> None:
    """``NOTIFY_SOCKET=@name`` is an abstract socket (no file): READY and STOPPING reach it."""
    name = f"forewarn-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        listener = Listener(sock, "@" + name)
        config = tmp_path / "checks.yaml"
        write_config(config, tmp_path / "state", free_port(), target)
        daemon = spawn(config, listener.address)
        assert "checks" in listener.wait_for("READY")["STATUS"]
        daemon.process.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING")
        assert daemon.wait() == 0


def _stopped(pid: int) -> bool:
    """Whether the process is in the stopped state (``T`` in /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "T"


def test_sigstop_stops_the_watchdog_pings_and_sigcont_resumes_them(
    tmp_path: Path, target: int, listener: Listener, spawn: Callable[..., Running]
) -> None:
    """A stuck process sends no WATCHDOG=1, so systemd would kill and restart it.

    SIGSTOP freezes the whole child, its event loop included: from the outside this is
    exactly a process stuck in a blocking call, without any test switch in the daemon. The
    child stays stopped for STOP_WINDOW_S (0.5 s, five ping periods at WATCHDOG_USEC=0.2 s):
    long enough that a ping would certainly have come, short enough to keep the test fast.
    The in-process rule (the loop runs but the scheduler is stuck) is tested on the pure
    decision function below.
    """
    config = tmp_path / "checks.yaml"
    write_config(config, tmp_path / "state", free_port(), target)
    daemon = spawn(config, listener.address, WATCHDOG_USEC=str(WATCHDOG_USEC))
    listener.wait_for("READY")
    listener.wait_for("WATCHDOG", timeout_s=2)

    daemon.process.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while not _stopped(daemon.process.pid):
        assert time.monotonic() < deadline, "the child did not stop"
        time.sleep(0.01)
    listener.drain()  # sent before it stopped
    window_end = time.monotonic() + STOP_WINDOW_S
    while (left := window_end - time.monotonic()) > 0:
        assert listener.receive(left) is None, "a stopped process cannot ping"

    daemon.process.send_signal(signal.SIGCONT)
    listener.wait_for("WATCHDOG", timeout_s=2)
    listener.wait_for("WATCHDOG", timeout_s=2)
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_a_second_daemon_on_the_same_state_refuses_to_start(
    tmp_path: Path, target: int, listener: Listener, spawn: Callable[..., Running]
) -> None:
    """One instance per state_dir: the second exits 1 with a clear message, no traceback."""
    state = tmp_path / "state"
    first_config, second_config = tmp_path / "first.yaml", tmp_path / "second.yaml"
    write_config(first_config, state, free_port(), target)
    write_config(second_config, state, free_port(), target)
    first = spawn(first_config, listener.address)
    listener.wait_for("READY")

    second = spawn(second_config)
    assert second.wait() == 1
    assert (
        f"another forewarn is already running on {state} (pid {first.process.pid})"
        in second.stderr.read_text()
    )
    assert "Traceback" not in second.output()
    assert first.process.poll() is None, "the first one keeps running"

    first.process.send_signal(signal.SIGTERM)
    assert first.wait() == 0
    # The lock went with the first process: a new daemon starts on the same state.
    third = spawn(second_config, listener.address)
    listener.wait_for("READY")
    third.process.send_signal(signal.SIGTERM)
    assert third.wait() == 0


async def test_the_smtp_password_never_appears_in_the_output(
    tmp_path: Path, spawn: Callable[..., Running]
) -> None:
    """Debug logs of a whole outage, delivered over SMTP with AUTH, never show the password."""
    password = f"pw-{uuid.uuid4().hex}"
    (tmp_path / "smtp-password").write_text(password + "\n", encoding="utf-8")
    web = socket.create_server(("127.0.0.1", 0))  # the service answers, then goes away
    async with FailingSmtpServer(auth_in_clear=True) as smtp:
        config = tmp_path / "checks.yaml"
        config.write_text(
            f"daemon: {{state_dir: '{tmp_path / 'state'}', listen: '127.0.0.1:{free_port()}'}}\n"
            "defaults: {interval: 200ms, timeout: 1s, retry_interval: 100ms, "
            "failure_threshold: 2}\n"
            "services: [{id: web, name: {en: Web}}]\n"
            "checks: [{id: web, service: web, type: tcp, host: 127.0.0.1, "
            f"port: {web.getsockname()[1]}}}]\n"
            "customers: [{id: acme, name: ACME, email: ops@acme.example, services: [web]}]\n"
            "notices:\n"
            "  transport: smtp\n"
            "  customer_delay: 0s\n"
            f"  smtp: {{host: 127.0.0.1, port: {smtp.port}, username: forewarn,\n"
            "          password_file: smtp-password, timeout: 5s}\n",
            encoding="utf-8",
        )
        daemon = spawn(config, None, "--log-level", "debug")
        deadline = time.monotonic() + 20
        while not any(e.get("new") == "up" for e in daemon.events()):
            assert daemon.process.poll() is None, daemon.output()
            assert time.monotonic() < deadline, "the service was never seen up"
            await asyncio.sleep(0.05)
        web.close()
        while not smtp.messages:
            assert daemon.process.poll() is None, daemon.output()
            assert time.monotonic() < deadline, "no notice delivered"
            await asyncio.sleep(0.05)  # the SMTP server runs meanwhile
        daemon.process.send_signal(signal.SIGTERM)
        while daemon.process.poll() is None:
            assert time.monotonic() < deadline + 15, "the daemon did not stop"
            await asyncio.sleep(0.05)  # the SMTP server runs meanwhile
    assert daemon.process.returncode == 0
    assert "AUTH" in smtp.commands, "the password was used"
    output = daemon.output()
    assert "delivery" in output and "probe" in output
    assert password not in output


# The pure parts, with explicit times.


def test_watchdog_pings_only_while_every_loop_progresses() -> None:
    """No progress for longer than the limit → no ping; each loop counts on its own."""
    limit = stall_limit(30.0)
    assert limit == 30.0
    assert progressing(now=100.0, marks=[99.5, 95.0], limit=limit)
    assert progressing(now=100.0, marks=[70.0, 99.0], limit=limit)  # exactly at the limit
    assert not progressing(now=100.0, marks=[69.9, 99.9], limit=limit)  # scheduler stuck
    assert not progressing(now=100.0, marks=[99.9, 60.0], limit=limit)  # dispatcher stuck
    # Loops idle-wake once a second: a short WATCHDOG_USEC does not make them look stuck.
    assert stall_limit(0.2) == MIN_STALL_S
    assert progressing(now=100.0, marks=[99.0, 98.5], limit=stall_limit(0.2))
    assert not progressing(now=100.0, marks=[97.0, 99.9], limit=stall_limit(0.2))


async def test_supervise_withholds_pings_while_a_loop_is_stuck(listener: Listener) -> None:
    """The event loop runs, but the scheduler's mark is stale: no WATCHDOG until it moves."""
    notifier = SystemdNotifier(listener.address)
    marks = [time.monotonic() - 60.0, time.monotonic()]  # scheduler stuck for a minute
    task = asyncio.create_task(
        supervise(notifier, lambda: marks, lambda: "s", period=WATCHDOG_USEC / 1e6)
    )
    try:
        deadline = time.monotonic() + 0.3  # three ping periods
        while time.monotonic() < deadline:
            assert listener.drain() == []
            await asyncio.sleep(0.02)
        marks[0] = time.monotonic() + 60.0  # it moves again (and stays fresh for the test)
        deadline = time.monotonic() + 2
        while {"WATCHDOG": "1"} not in listener.drain():
            assert time.monotonic() < deadline, "pings did not resume"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        notifier.close()


def test_watchdog_period_follows_the_environment() -> None:
    """Half of it is the ping period; WATCHDOG_PID names who must ping."""
    assert watchdog_period({}, pid=42) is None
    assert watchdog_period({"WATCHDOG_USEC": "30000000"}, pid=42) == 30.0
    assert watchdog_period({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "42"}, pid=42) == 0.2
    assert watchdog_period({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "7"}, pid=42) is None
    assert watchdog_period({"WATCHDOG_USEC": "0"}, pid=42) is None
    assert watchdog_period({"WATCHDOG_USEC": "soon"}, pid=42) is None


def test_notifier_without_notify_socket_is_a_no_op() -> None:
    """Not started by systemd: nothing is sent, nothing fails."""
    notifier = SystemdNotifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready("x") is False and notifier.watchdog() is False
    notifier.close()


def test_notifier_sends_one_datagram_per_message(listener: Listener) -> None:
    """Fields go together, on one line each; a multi-line status is flattened."""
    notifier = SystemdNotifier(listener.address)
    assert notifier.ready("reload failed: a\nb")
    assert listener.receive(1) == {"READY": "1", "STATUS": "reload failed: a b"}
    assert notifier.stopping()
    assert listener.receive(1) == {"STOPPING": "1", "STATUS": "stopping"}
    notifier.close()
    assert one_line("  a \n\tb ") == "a b"


def test_notifier_survives_a_vanished_manager(tmp_path: Path) -> None:
    """A socket nobody listens on makes sends return False, never raise."""
    notifier = SystemdNotifier(str(tmp_path / "nobody.sock"))
    assert notifier.watchdog() is False
    notifier.close()


def test_log_processor_redacts_secret_values() -> None:
    """Values of password/token/secret/authorization keys never reach the renderer."""
    event = {
        "event": "x",
        "password": "p1",
        "smtp_password": "p2",
        "api_token": "t1",
        "headers": {"Authorization": "Bearer t2", "Accept": "json"},
        "items": [{"client_secret": "s1"}],
        "check": "web",
    }
    out = redact_secrets(None, "info", event)
    assert out == {
        "event": "x",
        "password": REDACTED,
        "smtp_password": REDACTED,
        "api_token": REDACTED,
        "headers": {"Authorization": REDACTED, "Accept": "json"},
        "items": [{"client_secret": REDACTED}],
        "check": "web",
    }
