"""The ``forewarn`` command as a user runs it: real subprocesses, real exit codes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def forewarn(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m monitor`` with arguments and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_flag_and_command_print_the_installed_package_version() -> None:
    """``--version`` and ``version`` read the installed metadata, not a copy in the code."""
    from importlib import metadata

    expected = f"forewarn {metadata.version('forewarn')}"
    flag, command = forewarn("--version"), forewarn("version")
    assert (flag.returncode, flag.stdout.strip()) == (0, expected)
    assert command.returncode == 0 and command.stdout.splitlines()[0] == expected
    listed = {line.split()[0] for line in command.stdout.splitlines()[1:]}
    assert {"python", "aiohttp", "pyyaml", "pydantic"} <= listed
    assert "not installed" not in command.stdout


def test_check_config_summarises_the_example_and_exits_zero() -> None:
    """The top-level checks.yaml is valid; the summary counts its parts."""
    done = forewarn("check-config", "-c", "checks.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("checks.yaml: OK — ")
    assert " services, " in done.stdout and " checks, " in done.stdout


def test_check_config_lists_every_error_without_traceback(tmp_path: Path) -> None:
    """A bad file gets one line per error naming file, line and key, and exit status 1."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "services:\n"
        "  - {id: tracking, name: {fr: Suivi}}\n"
        "checks:\n"
        "  - id: t\n"
        "    service: tracking\n"
        "    type: http\n"
        "    url: http://127.0.0.1/\n"
        "    intervall: 5s\n"
        "  - {id: u, service: nowhere, type: tcp, host: 127.0.0.1, port: 22}\n",
        encoding="utf-8",
    )
    done = forewarn("check-config", "-c", str(bad))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{bad}:8: checks[0].intervall: unknown key" in done.stderr
    assert f"{bad}:9: checks[1].service: unknown service 'nowhere'" in done.stderr


def test_check_config_warns_of_an_update_pace_under_five_minutes_and_still_exits_zero(
    tmp_path: Path,
) -> None:
    """update_every: 2m is valid but floods customers: a warning on stderr, exit status 0."""
    path = tmp_path / "checks.yaml"
    path.write_text(
        "services:\n"
        "  - {id: tracking, name: Parcel tracking, update_every: 10m}\n"
        "  - {id: labels, name: Shipping labels, update_every: 1m}\n"
        "checks:\n"
        "  - {id: t, service: tracking, type: http, url: 'http://127.0.0.1/'}\n"
        "  - {id: l, service: labels, type: http, url: 'http://127.0.0.1/'}\n"
        "notices: {update_every: 4m}\n",
        encoding="utf-8",
    )
    done = forewarn("check-config", "-c", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: OK — ")
    assert done.stderr.splitlines() == [
        f"{path}:3: services[1].update_every: warning: 1m is under 5 minutes: customers of an "
        "outage would get an update email every 1m",
        f"{path}:7: notices.update_every: warning: 4m is under 5 minutes: customers of an "
        "outage would get an update email every 4m",
    ]


def test_run_refuses_a_broken_tokens_file_by_its_line_without_a_traceback(
    tmp_path: Path,
) -> None:
    """A malformed api_tokens_file stops ``forewarn run`` before it starts: exit 1, one line."""
    tokens = tmp_path / "tokens"
    tokens.write_text("ops:0123456789abcdef0123\nci 0123456789abcdef0123\n", encoding="utf-8")
    path = tmp_path / "checks.yaml"
    path.write_text(
        f"daemon: {{state_dir: '{tmp_path / 'state'}', listen: '127.0.0.1:0',"
        " api_tokens_file: tokens}\n"
        "services: [{id: tracking, name: Parcel tracking}]\n"
        "checks: [{id: t, service: tracking, type: http, url: 'http://127.0.0.1/'}]\n",
        encoding="utf-8",
    )
    for command in ("check-config", "run"):
        done = forewarn(command, "-c", str(path))
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"{tokens}:2: expected name:token or name:token:read" in done.stderr
        assert "0123456789abcdef0123" not in done.stderr
    assert not (tmp_path / "state").exists()  # refused before anything was opened


def test_check_config_on_a_missing_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """A path that does not exist is reported plainly."""
    done = forewarn("check-config", "-c", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "nope.yaml:1: cannot read" in done.stderr


def test_run_serves_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """``forewarn run`` binds its port, answers /healthz, and exits 0 on SIGTERM."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "checks.yaml"
    config.write_text(
        f"daemon: {{state_dir: {tmp_path / 'state'}, listen: '127.0.0.1:{port}'}}\n"
        "services: [{id: web, name: {en: Web}}]\n"
        "checks: [{id: web, service: web, type: tcp, host: 127.0.0.1, port: 9, interval: 1s}]\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 15
        while health is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    health = json.loads(r.read())
            except OSError:
                time.sleep(0.05)
        assert health == {"status": "ok", "checks": 1, "open_incidents": 0, "outbox_pending": 0}
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert events[0] == "started" and events[-1] == "stopped"
    assert (tmp_path / "state" / "forewarn.db").exists()


def test_check_config_warns_when_everything_listens_on_a_public_address(tmp_path: Path) -> None:
    """A non-loopback listen without admin_listen is valid but warned about; loopback is not."""
    base = (
        "services: [{id: web, name: {en: Web}}]\n"
        "checks: [{id: web, service: web, type: tcp, host: 127.0.0.1, port: 9}]\n"
    )
    daemons = {
        "0.0.0.0:9470": True,
        "127.0.0.1:9470": False,
        "[::1]:9470": False,
        "0.0.0.0:9470', admin_listen: '127.0.0.1:9471": False,
    }
    for listen, warned in daemons.items():
        config = tmp_path / "checks.yaml"
        config.write_text(f"daemon: {{listen: '{listen}'}}\n" + base, encoding="utf-8")
        done = forewarn("check-config", "-c", str(config))
        assert done.returncode == 0, done.stderr
        assert ("daemon.admin_listen" in done.stderr) is warned, (listen, done.stderr)
