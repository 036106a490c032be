"""Several real ``forewarn run`` processes sharing one PostgreSQL: the cluster tests' scene.

Each instance is a child process with a state folder, an API port and a location of its own,
started in a private mount namespace whose ``/etc/hosts`` says where the target names lead.
A healthy instance resolves them to 127.0.0.1, where the test's aiohttp target listens; an
instance whose network is "broken" resolves them to 127.0.0.2, where nothing listens, so every
target (its canary too) is unreachable from it alone, as when one data centre's uplink fails.
The namespace needs root, as CI has; elsewhere the cluster tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.operator_scene import CUSTOMERS_YAML, READ, WRITE

HEALTHY, BROKEN = "127.0.0.1", "127.0.0.2"
NAMES = ("tracking.test", "labels.test", "canary.test")
LEASE_PERIOD_S = 1.0

CLUSTER_YAML = (
    """\
daemon:
  state_dir: "{state}"
  listen: "127.0.0.1:{port}"
  public_url: "https://status.example.net"
  timezone: Europe/Paris
  api_tokens_file: "{tokens}"
  database: "{dsn}"
  location: {location}
  lease_period: {lease_period}s
  probe_from: {probe_from}
  canary: [{{id: uplink, type: http, url: "http://canary.test:{target_port}/canary"}}]
defaults: {{interval: 300ms, timeout: 1s, retry_interval: 100ms,
           failure_threshold: 3, success_threshold: 2}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http,
     url: "http://tracking.test:{target_port}/tracking",
     expect: {{status: [200], body_contains: parcelNumber}}}}
  - {{id: labels-ws, service: labels, type: http, url: "http://labels.test:{target_port}/labels"}}
"""
    + CUSTOMERS_YAML
    + """\
notices:
  from: "Support <support@example.net>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout: 5s}}
  customer_delay: 0s
  update_every: {update_every}
  stable_for: 300ms
  retry_initial: 100ms
  digest_window: 0s
  ops: [{{type: email, to: oncall@example.net}}]
"""
)


def needs_namespaces() -> None:
    """Skip the calling test where private mount namespaces are not available."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("cluster tests need root and unshare(1) for a private /etc/hosts")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Instance:
    """One ``forewarn run`` child process of the cluster."""

    name: str
    folder: Path
    port: int
    reaches: str = HEALTHY  # where the target names lead from this instance
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        """The instance's checks.yaml."""
        return self.folder / "checks.yaml"

    @property
    def log(self) -> Path:
        """Where the instance's output goes (read on a failure)."""
        return self.folder / "forewarn.log"

    def start(self) -> None:
        """Start the daemon in a mount namespace of its own, with its own /etc/hosts."""
        hosts = self.folder / "hosts"
        lines = [f"{self.reaches} {name}" for name in NAMES]
        hosts.write_text(Path("/etc/hosts").read_text() + "\n".join(lines) + "\n")
        shell = 'mount --bind "$0" /etc/hosts && exec "$@"'
        argv = ["unshare", "-m", "sh", "-c", shell, str(hosts)]
        argv += [sys.executable, "-m", "monitor", "run", "-c", str(self.config)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """``kill -9``: no goodbye, no lease given back."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it; SIGKILL if it does not go in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def get(self, path: str, token: str = READ) -> Any:
        """GET a JSON document from the instance's API (raises while it is not listening)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code != 503:  # /healthz says degraded with a 503, and why in its body
                raise
            return json.load(error)

    def post(self, path: str, body: dict[str, Any], token: str = WRITE) -> Any:
        """POST JSON to the instance's operator API."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            return json.load(response)

    def healthy(self) -> bool:
        """Whether /healthz answers at all (the instance is up and serving)."""
        try:
            self.get("/healthz")
        except (OSError, ValueError):
            return False
        return True

    def output(self) -> str:
        """Everything the instance logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    """The instances, by name, and how to write their configuration."""

    instances: dict[str, Instance]

    def __getitem__(self, name: str) -> Instance:
        return self.instances[name]

    def alive(self) -> list[Instance]:
        """The instances whose process still runs."""
        return [i for i in self.instances.values() if i.process and i.process.poll() is None]

    def logs(self) -> str:
        """Every instance's output, headed by its name: the first thing to read on a failure."""
        return "\n".join(f"==== {i.name}\n{i.output()[-6000:]}" for i in self.instances.values())


@contextmanager
def running_cluster(
    tmp_path: Path,
    dsn: str,
    smtp_port: int,
    target_port: int,
    locations: dict[str, str],
    *,
    broken: frozenset[str] = frozenset(),
    probe_from: int = 2,
    update_every: str = "1h",
) -> Iterator[Cluster]:
    """Start one instance per ``locations`` entry (name → location); stop them all on exit.

    Instances named in ``broken`` cannot reach any target.
    """
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops:{WRITE}\ngrafana:{READ}:read\n", encoding="utf-8")
    instances: dict[str, Instance] = {}
    for name, location in locations.items():
        folder = tmp_path / name
        folder.mkdir()
        instance = Instance(name, folder, free_port(), BROKEN if name in broken else HEALTHY)
        instance.config.write_text(
            CLUSTER_YAML.format(
                state=folder / "state",
                port=instance.port,
                tokens=tokens,
                dsn=dsn,
                location=location,
                lease_period=LEASE_PERIOD_S,
                probe_from=probe_from,
                target_port=target_port,
                smtp_port=smtp_port,
                update_every=update_every,
            ),
            encoding="utf-8",
        )
        instances[name] = instance
    cluster = Cluster(instances)
    try:
        for instance in instances.values():
            instance.start()
        yield cluster
    except BaseException:
        print(cluster.logs())  # what each instance said is the first thing to read
        raise
    finally:
        for instance in instances.values():
            instance.stop()
