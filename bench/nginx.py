"""A fast local HTTP target for the benchmarks: Debian's nginx, our own child, 127.0.0.1 only.

``with nginx_target() as url:`` gives ``http://127.0.0.1:<port>/ok``, which answers ``200``
with a small fixed body. nginx runs in the foreground in its own process group, with a config
written to a temporary directory (one worker, no access log, no files read), and is stopped
(the whole group, SIGKILL if it lingers) when the block ends, also on Ctrl-C or an exception.
``with nginx_server() as server:`` gives the same with its pid, to read its CPU via procstat,
and ``server.tls_url``: the same answer over HTTPS with a certificate for 127.0.0.1 issued by a
throwaway CA (``server.ca_file``, made with trustme), every connection a full handshake.

The small process helpers here are shared by the other sections that start servers:
``free_port``, ``start_group`` (own process group, and ``die_with_parent``: SIGTERM to the
child if we are killed outright), ``stop_group``, ``wait_listening``, and ``sigterm_as_exit``
(``timeout``/``kill`` unwind like Ctrl-C, so finally blocks stop the children).

Run alone to try it: ``python -m bench.nginx``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NGINX = "/usr/sbin/nginx"
INSTALL_HINT = "apt-get install -y nginx-light prometheus-blackbox-exporter"
BODY = "ok\n"

# Fresh connections at thousands per second: a deep accept queue so bursts are not refused,
# and enough connections and fds that the target is never the limit.
CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 32768;
    multi_accept on;
}}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {tmp}/server.pem;
        ssl_certificate_key {tmp}/server.key;
        # Every probe a full handshake, as for a prober that keeps no session between runs.
        ssl_session_cache off;
        ssl_session_tickets off;
        default_type text/plain;
        location = /ok {{
            return 200 "{body}";
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


_PR_SET_PDEATHSIG = 1  # prctl(2)
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM when we die, even by SIGKILL (no orphans)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM (``timeout``, ``kill``) unwinds like Ctrl-C, running finally.

    Only from the main thread and when nobody else handles SIGTERM already.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def leave(signum: int, _frame: object) -> None:
        """Raise SystemExit where the main thread is, so cleanups run."""
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class ToolMissing(RuntimeError):
    """A program a benchmark needs is not installed; the message says how to install it."""


@dataclass(frozen=True, slots=True)
class Nginx:
    """A running nginx: where it answers and the pid of its master process."""

    url: str  # http://127.0.0.1:<port>/ok
    port: int
    pid: int
    tls_url: str  # https://127.0.0.1:<tls_port>/ok, certificate issued by ``ca_file``
    ca_file: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require(path: str, what: str) -> str:
    """``path`` if it is an executable, else ToolMissing with the install hint."""
    if not os.access(path, os.X_OK):
        found = shutil.which(Path(path).name)
        if found is None:
            raise ToolMissing(f"{what} is not installed ({path}); install it with: {INSTALL_HINT}")
        return found
    return path


def start_group(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new process group (so it and its children stop together)."""
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - fixed programs, arguments built here
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the group ourselves
            preexec_fn=die_with_parent,  # and if we are killed outright, it goes too
        )


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the group id is the child's pid (start_new_session)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait_s)
            # The leader is gone; workers of the same group may still be exiting.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return


def wait_listening(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 10.0
) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; raise if the child dies first."""
    name = Path(str(proc.args[0] if isinstance(proc.args, list) else proc.args)).name
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} in {timeout_s} s")


def issue_certificate(folder: Path) -> None:
    """A throwaway CA (``ca.pem``) and a certificate for 127.0.0.1 signed by it, for nginx."""
    try:
        import trustme
    except ImportError as exc:
        raise ToolMissing("trustme is missing: pip install -e '.[test]'") from exc
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server = ca.issue_cert("127.0.0.1")
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))


@contextlib.contextmanager
def nginx_server() -> Iterator[Nginx]:
    """Run our own nginx on a free 127.0.0.1 port for the duration of the block."""
    binary = require(NGINX, "nginx")
    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="bench-nginx-") as name:
        tmp = Path(name)
        issue_certificate(tmp)
        for attempt in range(3):  # the free port may be taken between the probe and the bind
            port, tls_port = free_port(), free_port()
            conf = tmp / "nginx.conf"
            body = BODY.replace("\n", "\\n")
            conf.write_text(CONFIG.format(tmp=tmp, port=port, tls_port=tls_port, body=body))
            log = tmp / "stderr.log"
            # -e: nginx opens its default error log before reading the config; keep it ours.
            argv = [binary, "-p", f"{tmp}/", "-c", str(conf), "-e", str(tmp / "error.log")]
            proc = start_group(argv, log)
            try:
                wait_listening(proc, port, log)
                wait_listening(proc, tls_port, log)
            except RuntimeError:
                stop_group(proc)
                if attempt == 2:
                    raise
                continue
            try:
                yield Nginx(
                    url=f"http://127.0.0.1:{port}/ok",
                    port=port,
                    pid=proc.pid,
                    tls_url=f"https://127.0.0.1:{tls_port}/ok",
                    ca_file=tmp / "ca.pem",
                )
            finally:
                stop_group(proc)
            return


@contextlib.contextmanager
def nginx_target() -> Iterator[str]:
    """The URL of our own nginx answering 200 ``ok`` on ``/ok``, for the block's duration."""
    with nginx_server() as server:
        yield server.url


def main() -> None:
    """Start nginx, fetch /ok once, stop it: a smoke test of this module."""
    import urllib.request

    from bench.procstat import sample_tree

    try:
        with nginx_server() as server:
            with urllib.request.urlopen(server.url, timeout=5) as reply:  # noqa: S310 - ours
                print(f"{server.url} → {reply.status} {reply.read()!r}")
            tree = sample_tree(server.pid)
            print(f"nginx pid {server.pid}: {tree.threads} threads, {tree.rss_mb:.1f} MB RSS")
    except ToolMissing as exc:
        print(f"skipped: {exc}")


if __name__ == "__main__":
    main()
