"""``forewarn incidents`` and ``forewarn maintenance`` run for real against a served API."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from test_api import NOW, READ, WRITE, DictOperations, operator_app, write_tokens

from monitor.cli.main import main
from monitor.core.words import Words
from monitor.domain.incidents import IncidentStatus
from monitor.web.auth import BearerAuth, load_tokens


@dataclass(frozen=True)
class Daemon:
    """The API served from a background thread, its operations, and a checks.yaml naming it."""

    url: str
    ops: DictOperations
    config: Path
    logs: list[MutableMapping[str, Any]]  # what the API logged, kept off the CLI's stdout


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """Serve the operator API on 127.0.0.1 in its own thread: the CLI under test blocks."""
    ops = DictOperations()
    ops.open("tracking", minutes_ago=10)
    old = ops.open("labels", minutes_ago=300)
    ops.incidents[old.id] = replace(old, status=IncidentStatus.RESOLVED, resolved_at=NOW - 60)
    auth = BearerAuth(load_tokens(write_tokens(tmp_path)))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(operator_app(ops, auth), access_log=None, shutdown_timeout=0.1)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    config = tmp_path / "checks.yaml"
    config.write_text(
        f"daemon: {{state_dir: {tmp_path / 'state'}, listen: '127.0.0.1:{port}',"
        " api_tokens_file: tokens}\n"
        "services: [{id: tracking, name: {en: Tracking}}, {id: labels, name: {en: Labels}}]\n"
        "checks: [{id: t, service: tracking, type: tcp, host: 127.0.0.1, port: 9}]\n",
        encoding="utf-8",
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with structlog.testing.capture_logs() as logs:
            yield Daemon(f"http://127.0.0.1:{port}", ops, config, logs)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def forewarn(
    capsys: pytest.CaptureFixture[str], daemon: Daemon, *args: str
) -> tuple[int, str, str]:
    """Run ``forewarn <args> -c <config>``; return exit status, stdout and stderr."""
    status = main([*args, "-c", str(daemon.config)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and WRITE not in out + err and READ not in out + err
    return status, out, err


def open_id(daemon: Daemon) -> str:
    """The open tracking incident's id."""
    return next(i.id for i in daemon.ops.incidents.values() if i.service_id == "tracking")


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token in the developer's environment must not leak into these tests."""
    monkeypatch.delenv("FOREWARN_TOKEN", raising=False)


def test_incidents_list_prints_an_aligned_table(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """Address and token come from checks.yaml; the open incident is one aligned row."""
    status, out, _ = forewarn(capsys, daemon, "incidents", "list")
    assert status == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "STATUS", "SERVICES", "FIRST", "FAILURE", "NEXT", "UPDATE"]
    assert row.split()[:3] == [open_id(daemon), "investigating", "tracking"]
    assert row.index("investigating") == header.index("STATUS")
    # In daemon.timezone (Europe/Paris by default) with the offset, as emails and pages say.
    assert "2026-11-22 12:49:30+01:00" in row and "2026-11-22 13:30:00+01:00" in row


def test_incidents_list_all_as_json_is_the_apis_answer(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """``--all --json`` prints the API's JSON, resolved incident included."""
    status, out, _ = forewarn(capsys, daemon, "incidents", "list", "--all", "--json")
    assert status == 0
    statuses = [i["status"] for i in json.loads(out)["incidents"]]
    assert statuses == ["investigating", "resolved"]


def test_incidents_show_prints_fields_and_timeline(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """The detail lists the fields that have values, then each timeline entry."""
    status, out, _ = forewarn(capsys, daemon, "incidents", "show", open_id(daemon))
    assert status == 0
    assert "reason" in out and "connect_refused" in out
    assert "timeline:" in out
    assert "2026-11-22 12:50:00+01:00  opened" in out


def test_identify_sends_the_message_and_reports_the_new_status(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """The message reaches the daemon; the CLI says where the incident now stands."""
    incident_id = open_id(daemon)
    status, out, _ = forewarn(
        capsys, daemon, "incidents", "identify", incident_id, "-m", "Carrier gateway down"
    )
    assert status == 0
    assert out.strip() == f"incident {incident_id}: identify sent, now identified"
    assert daemon.ops.updates[incident_id][-1].message == Words(every="Carrier gateway down")
    [logged] = [e for e in daemon.logs if e["event"] == "operator_action"]
    assert logged["operator"] == "ops" and WRITE not in repr(daemon.logs)


def test_postmortem_reads_its_text_from_a_file(
    capsys: pytest.CaptureFixture[str], daemon: Daemon, tmp_path: Path
) -> None:
    """``--file`` sends the file's text; on a still-open incident the 409 is exit 1."""
    resolved = next(i.id for i in daemon.ops.incidents.values() if i.service_id == "labels")
    text = tmp_path / "pm.txt"
    text.write_text("Root cause: expired certificate.\nFix: renewal alerts.\n", encoding="utf-8")
    status, _, _ = forewarn(
        capsys, daemon, "incidents", "postmortem", resolved, "--file", str(text)
    )
    assert status == 0
    assert daemon.ops.updates[resolved][-1].message.every.startswith("Root cause: expired")
    status, _, err = forewarn(
        capsys, daemon, "incidents", "postmortem", open_id(daemon), "-m", "too early"
    )
    assert status == 1
    assert err == "forewarn: cannot postmortem a investigating incident (HTTP 409)\n"


def test_an_unknown_incident_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """The daemon's 404 message, on one line."""
    status, out, err = forewarn(capsys, daemon, "incidents", "show", "nope")
    assert (status, out) == (1, "")
    assert err == "forewarn: no incident 'nope' (HTTP 404)\n"


def test_a_bad_token_is_a_401_with_a_hint_and_never_printed(
    capsys: pytest.CaptureFixture[str], daemon: Daemon, tmp_path: Path
) -> None:
    """``--token-file`` overrides checks.yaml; a wrong token says which settings to check."""
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-token-0123456789abcdef\n", encoding="utf-8")
    status, _, err = forewarn(capsys, daemon, "incidents", "list", "--token-file", str(wrong))
    assert status == 1
    assert "invalid token (HTTP 401)" in err and "FOREWARN_TOKEN" in err
    assert "wrong-token" not in err and len(err.splitlines()) == 1


def test_a_read_only_token_from_the_environment_can_list_but_not_act(
    capsys: pytest.CaptureFixture[str], daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FOREWARN_TOKEN with --url needs no checks.yaml; a read token's write is a 403."""
    monkeypatch.setenv("FOREWARN_TOKEN", READ)
    missing = str(daemon.config.parent / "absent.yaml")
    assert main(["incidents", "list", "--url", daemon.url, "-c", missing]) == 0
    status = main(["incidents", "resolve", open_id(daemon), "-m", "x", "--url", daemon.url])
    err = capsys.readouterr().err
    assert status == 1 and "token 'grafana' is read-only (HTTP 403)" in err


def test_nothing_listening_is_exit_3_with_a_hint(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """A refused connection says the daemon may not be running, and how to start it."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    status, _, err = forewarn(
        capsys, daemon, "incidents", "list", "--url", f"http://127.0.0.1:{port}"
    )
    assert status == 3
    assert f"cannot reach http://127.0.0.1:{port}" in err
    assert f"is forewarn running? (forewarn run -c {daemon.config})" in err


def test_maintenance_add_then_list(capsys: pytest.CaptureFixture[str], daemon: Daemon) -> None:
    """A window added from the shell is planned with its summary and listed in a table."""
    status, out, _ = forewarn(
        capsys, daemon, "maintenance", "add", "--services", "tracking, labels",
        "--start", "2026-11-22T13:00:00+01:00", "--end", "2026-11-22T15:00:00+01:00",
        "--announce-before", "2h", "--summary-fr", "Mise à jour du transporteur",
    )  # fmt: skip
    assert status == 0
    assert out.startswith("maintenance mw-20261122-1200 planned: tracking,labels from ")
    window, _ = daemon.ops.known["mw-20261122-1200"]
    assert (window.start, window.announce_before) == (NOW, 7200)
    assert window.summary == {"fr": "Mise à jour du transporteur"}
    status, out, _ = forewarn(capsys, daemon, "maintenance", "list")
    header, row = out.splitlines()
    assert header.split() == ["ID", "STATE", "SERVICES", "START", "END", "ANNOUNCE"]
    assert row.split()[:3] == ["mw-20261122-1200", "scheduled", "tracking,labels"]
    assert row.endswith("2h")


def test_maintenance_extend_and_cancel(capsys: pytest.CaptureFixture[str], daemon: Daemon) -> None:
    """A window's end moves, then the window is cancelled; a second cancel is refused."""
    forewarn(
        capsys, daemon, "maintenance", "add", "--id", "release-42", "--services", "tracking",
        "--start", "2026-11-22T13:00:00Z", "--end", "2026-11-22T14:00:00Z",
    )  # fmt: skip
    status, out, _ = forewarn(
        capsys, daemon, "maintenance", "extend", "release-42", "--end", "2026-11-22T15:30:00Z"
    )
    assert status == 0 and "to 2026-11-22 16:30:00+01:00" in out
    assert daemon.ops.known["release-42"][0].end == NOW + 3.5 * 3600
    assert forewarn(capsys, daemon, "maintenance", "cancel", "release-42")[0] == 0
    assert daemon.ops.known["release-42"][0].cancelled
    status, _, err = forewarn(capsys, daemon, "maintenance", "cancel", "release-42")
    assert status == 1 and "is over (HTTP 409)" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--start", "2026-03-29 02:30", "--end", "2026-03-29T04:00Z"],
            "--start: 2026-03-29 02:30 does not exist in Europe/Paris",
        ),
        (["--start", "22/11/2026", "--end", "2026-11-22T14:00Z"], "--start: expected"),
        (["--start", "2026-11-22T13:00Z", "--end", "soon"], "--end: expected"),
        (
            [
                "--start",
                "2026-11-22T13:00Z",
                "--end",
                "2026-11-22T14:00Z",
                "--announce-before",
                "x",
            ],
            "--announce-before:",
        ),
    ],
)
def test_a_bad_maintenance_command_line_is_exit_2_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], daemon: Daemon, args: list[str], fragment: str
) -> None:
    """Unreadable or skipped local times and bad durations are usage errors, never sent."""
    status, _, err = forewarn(capsys, daemon, "maintenance", "add", "--services", "tracking", *args)
    assert status == 2 and fragment in err
    assert daemon.ops.known == {}


def test_a_missing_message_is_exit_2_and_names_the_options(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """identify without any message is refused before anything is sent."""
    incident_id = open_id(daemon)
    status, _, err = forewarn(capsys, daemon, "incidents", "identify", incident_id)
    assert status == 2
    assert err == "forewarn: a message is needed: -m TEXT, or --message-fr and --message-en\n"
    assert daemon.ops.updates[incident_id][-1].kind == "opened"


def test_no_token_anywhere_says_where_to_put_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A checks.yaml without api_tokens_file and no override is exit 1 with the options."""
    config = tmp_path / "plain.yaml"
    config.write_text(
        "services: [{id: tracking, name: {en: Tracking}}]\n"
        "checks: [{id: t, service: tracking, type: tcp, host: 127.0.0.1, port: 9}]\n",
        encoding="utf-8",
    )
    assert main(["maintenance", "list", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "no daemon.api_tokens_file" in err and "--token-file" in err


def test_incidents_show_escapes_control_characters_in_messages(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """Another operator's ESC, NUL and bidi override reach the terminal escaped, not raw."""
    incident_id = open_id(daemon)
    hostile = "fixed\x1b[2J\x1b]0;owned\x07 by\x00 ops \u202eevil"
    assert forewarn(capsys, daemon, "incidents", "identify", incident_id, "-m", hostile)[0] == 0
    status, out, _ = forewarn(capsys, daemon, "incidents", "show", incident_id)
    assert status == 0
    assert "fixed\\x1b[2J\\x1b]0;owned\\x07 by\\x00 ops \\u202eevil" in out
    assert not any(c in out for c in "\x1b\x00\x07\u202e")
