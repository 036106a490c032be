"""The operator CLI reads only what it uses from checks.yaml, against a served API."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_ops import Daemon, daemon, forewarn, no_env_token, open_id

from monitor.cli.main import main
from monitor.core.words import Words

__all__ = ["daemon", "no_env_token"]  # fixtures, used by name

# As systemd/README.md recommends: a credential only the service's own environment resolves.
SYSTEMD_STYLE = """\
daemon: {{listen: "127.0.0.1:{port}", api_tokens_file: tokens, timezone: Europe/London}}
services: [{{id: tracking, name: {{en: Tracking}}}}]
checks: [{{id: t, service: tracking, type: tcp, host: 127.0.0.1, port: 9}}]
customers:
  - {{id: acme, name: ACME, email: ops@acme.example, language: fr, services: [tracking]}}
notices:
  transport: smtp
  smtp: {{host: smtp.example.net, port: 587, starttls: true, username: forewarn,
         password_file: "${{CREDENTIALS_DIRECTORY}}/smtp-password"}}
"""


def test_a_secret_the_cli_does_not_use_does_not_stop_it(
    capsys: pytest.CaptureFixture[str], daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset ${CREDENTIALS_DIRECTORY} in the SMTP password stops the daemon, not the CLI."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    config = daemon.config.with_name("systemd.yaml")
    port = daemon.url.rsplit(":", 1)[1]
    config.write_text(SYSTEMD_STYLE.format(port=port), encoding="utf-8")

    status = main(["incidents", "list", "-c", str(config)])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert open_id(daemon) in out
    assert "2026-11-22 11:49:30+00:00" in out  # daemon.timezone: Europe/London
    assert main(["check-config", "-c", str(config)]) != 0  # the daemon would refuse it
    assert "environment variable CREDENTIALS_DIRECTORY is not set" in capsys.readouterr().err


def test_what_the_cli_does_use_is_still_checked_with_its_line(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """A wrong daemon.listen is the CLI's own business: file, line and key."""
    config: Path = daemon.config.with_name("bad.yaml")
    config.write_text(
        "daemon:\n  listen: nowhere\n"
        "services: [{id: tracking, name: Tracking}]\n"
        "checks: [{id: t, service: tracking, type: tcp, host: 127.0.0.1, port: 9}]\n",
        encoding="utf-8",
    )
    status = main(["incidents", "list", "-c", str(config)])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith(f"forewarn: {config}:2: daemon.listen: must be host:port")
    assert forewarn(capsys, daemon, "incidents", "list")[0] == 0  # the good file still works


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-m", "x", "--message-en", "y"], "-m is one text for every language: give it alone"),
        (["--message-fr", "   "], "--message-fr: the message is empty"),
    ],
)
def test_mixed_or_empty_messages_are_usage_errors_and_send_nothing(
    capsys: pytest.CaptureFixture[str], daemon: Daemon, args: list[str], error: str
) -> None:
    """One text for all and per-language texts do not mix; nothing is sent on a bad line."""
    incident_id = open_id(daemon)
    status, _, err = forewarn(capsys, daemon, "incidents", "update", incident_id, *args)
    assert status == 2 and error in err
    assert daemon.ops.updates[incident_id][-1].kind == "opened"


def test_per_language_texts_reach_the_api_as_one_object(
    capsys: pytest.CaptureFixture[str], daemon: Daemon
) -> None:
    """--message-fr and --message-en are sent as {"fr": …, "en": …}; show prints each."""
    incident_id = open_id(daemon)
    status, _, _ = forewarn(
        capsys, daemon, "incidents", "update", incident_id,
        "--message-en", "Restore at 80 %.", "--message-fr", "Rétabli à 80 %.",
    )  # fmt: skip
    assert status == 0
    assert daemon.ops.updates[incident_id][-1].message == Words.of(
        {"fr": "Rétabli à 80 %.", "en": "Restore at 80 %."}
    )
    status, out, _ = forewarn(capsys, daemon, "incidents", "show", incident_id)
    assert "[fr] Rétabli à 80 %." in out and "[en] Restore at 80 %." in out
