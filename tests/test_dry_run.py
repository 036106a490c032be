"""``forewarn probe`` and ``forewarn notices preview|send-test``: real targets, a real SMTP
server, and ``python -m monitor`` subprocesses wherever the exit status is the answer."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from monitor.cli.main import main
from monitor.cli.probe import probe_once
from monitor.config.load import load_config
from monitor.notices.preview import KINDS
from tests.smtp_server import FailingSmtpServer

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = "Brasserie O'Neil & Fils"
LANGS = ("fr", "en")


async def forewarn(*args: str) -> tuple[int, str, str]:
    """``python -m monitor ARGS`` without blocking this loop (it serves the targets)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Targets:
    """An aiohttp server on 127.0.0.1 port 0: healthy, failing, slow and silent paths."""

    def __init__(self) -> None:
        self.in_flight = self.most_in_flight = 0
        self.port = 0

    async def ok(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.02)  # long enough for concurrent probes to overlap
        self.in_flight -= 1
        return web.json_response({"status": "OK", "parcelNumber": "6A0001"})

    async def broken(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "KO"}, status=503)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.1)
        return web.json_response({"status": "OK", "parcelNumber": "6A0001"})

    async def silent(self, request: web.Request) -> web.Response:
        await asyncio.Event().wait()  # never answers: the check's own timeout decides
        raise AssertionError("unreachable")


@pytest.fixture
async def targets() -> AsyncIterator[Targets]:
    found = Targets()
    app = web.Application()
    for name in ("ok", "broken", "slow", "silent"):
        app.router.add_get(f"/{name}", getattr(found, name))
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = runner.addresses[0][1]
    yield found
    await runner.cleanup()


def write(tmp_path: Path, port: int, notices: str = "{}", concurrency: int = 500) -> Path:
    """A checks.yaml with four HTTP checks and a heartbeat, two customers, one override dir."""
    base = f"http://127.0.0.1:{port}"
    path = tmp_path / "checks.yaml"
    path.write_text(f"""
daemon: {{state_dir: {tmp_path / "state"}, timezone: America/Montreal,
          max_concurrency: {concurrency}}}
defaults: {{timeout: 2s}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - id: labels
    name: {{fr: Étiquettes, en: Shipping labels}}
    impact: {{fr: "l'impression des étiquettes échoue", en: label printing fails}}
checks:
  - {{id: track-ok, service: tracking, type: http, url: "{base}/ok",
     expect: {{body_contains: parcelNumber, json: {{"$.status": "OK"}}}}}}
  - {{id: track-ok-2, service: tracking, type: http, url: "{base}/ok"}}
  - {{id: labels-down, service: labels, type: http, url: "{base}/broken"}}
  - {{id: labels-slow, service: labels, type: http, url: "{base}/slow",
     expect: {{max_latency: 50ms}}}}
  - {{id: labels-silent, service: labels, type: http, url: "{base}/silent", timeout: 200ms}}
  - {{id: nightly-edi, service: labels, type: heartbeat, every: 1d,
     token: "0123456789abcdef0123"}}
customers:
  - {{id: acme, name: ACME, email: ops@acme.example, language: en, services: [tracking]}}
  - {{id: oneil, name: "{CUSTOMER}", email: it@oneil.example, language: fr,
     services: [labels], timezone: America/Montreal}}
notices: {notices}
""")
    return path


async def test_probe_passes_prints_each_result_and_phases_and_exits_zero(
    tmp_path: Path, targets: Targets
) -> None:
    """Named checks that answer as expected: one line each with its phases; status 0."""
    config = write(tmp_path, targets.port)
    status, out, err = await forewarn("probe", "track-ok", "track-ok-2", "-c", str(config))
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["track-ok", "ok"]
    assert "connect" in lines[1] and "processing" in lines[1]
    assert lines[-1] == "2 of 2 passed"
    assert not (tmp_path / "state").exists()  # no state: nothing was opened or written


async def test_probe_reports_failures_as_json_and_exits_one(
    tmp_path: Path, targets: Targets
) -> None:
    """Every check: failed with its reason, degraded, timed out at its own timeout, skipped."""
    config = write(tmp_path, targets.port)
    status, out, err = await forewarn("probe", "--json", "-c", str(config))
    assert status == 1, err
    answer = json.loads(out)
    results = {r["check"]: r for r in answer["results"]}
    assert answer["passed"] is False
    assert {k: r["status"] for k, r in results.items()} == {
        "track-ok": "ok",
        "track-ok-2": "ok",
        "labels-down": "failed",
        "labels-slow": "degraded",
        "labels-silent": "failed",
        "nightly-edi": "skipped",
    }
    assert results["labels-down"]["reason"] == "http_status"
    assert "503" in results["labels-down"]["detail"]
    assert results["labels-silent"]["reason"] == "timeout"
    assert results["labels-silent"]["duration_s"] < 2  # its own 200 ms, not the default 2 s
    assert results["track-ok"]["phases"]["connect"] >= 0
    assert results["track-ok"]["service"] == "tracking"


async def test_probe_of_an_unknown_check_is_a_clear_error_with_status_two(
    tmp_path: Path, targets: Targets
) -> None:
    config = write(tmp_path, targets.port)
    status, out, err = await forewarn("probe", "track-ok", "trak-ok", "-c", str(config))
    assert status == 2
    assert "unknown check trak-ok" in err and "track-ok" in err
    assert "Traceback" not in err and out == ""


async def test_probe_keeps_to_max_concurrency(tmp_path: Path, targets: Targets) -> None:
    """daemon.max_concurrency bounds the probes in flight, as in the scheduler."""
    config = load_config(write(tmp_path, targets.port, concurrency=1))
    checks = [c for c in config.checks if c.id.startswith("track-ok")]
    results = await probe_once(config, checks)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert targets.most_in_flight == 1
    bounded = load_config(write(tmp_path, targets.port, concurrency=2))
    await probe_once(bounded, checks)
    assert targets.most_in_flight == 2  # the same two overlap when allowed: the bound held


def test_preview_renders_every_kind_in_both_languages_for_the_customer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Subject, text and HTML of all ten kinds, fr and en, name the customer and the service."""
    config = write(tmp_path, 9)
    out = tmp_path / "out"
    for kind in KINDS:
        for lang in LANGS:
            argv = ["notices", "preview", kind, "-c", str(config), "--customer", "oneil"]
            assert main([*argv, "--lang", lang, "--out", str(out)]) == 0
            subject = (out / f"{kind}.{lang}.subject").read_text(encoding="utf-8")
            text = (out / f"{kind}.{lang}.txt").read_text(encoding="utf-8")
            html = (out / f"{kind}.{lang}.html").read_text(encoding="utf-8")
            service = "Étiquettes" if lang == "fr" else "Shipping labels"
            assert service in subject, (kind, lang, subject)
            assert CUSTOMER in text, (kind, lang)
            if kind != "maintenance_ended":  # "it is over" quotes no time
                assert "America/Montreal" in text, (kind, lang)  # the customer's zone
            assert "Brasserie O&#39;Neil &amp; Fils" in html, (kind, lang)
    assert len(list(out.iterdir())) == len(KINDS) * 2 * 3
    first = (out / "first.en.txt").read_text(encoding="utf-8")
    assert "label printing fails" in first  # the service's own impact, from checks.yaml
    capsys.readouterr()


def test_preview_to_stdout_defaults_to_a_subscribed_customer_and_their_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, 9)
    assert main(["notices", "preview", "resolved", "-c", str(config), "--service", "tracking"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Subject: [Resolved] Parcel tracking restored\n\n")
    assert "Hello ACME," in out and "/unsubscribe/" in out


def test_preview_uses_the_configured_template_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = tmp_path / "templates" / "fr"
    overrides.mkdir(parents=True)
    (overrides / "first.subject").write_text("Alerte pour {{ customer_name }}\n")
    config = write(tmp_path, 9, notices=f"{{templates_dir: {tmp_path / 'templates'}}}")
    assert main(["notices", "preview", "first", "-c", str(config), "--customer", "oneil"]) == 0
    assert capsys.readouterr().out.startswith(f"Subject: Alerte pour {CUSTOMER}\n")


async def test_preview_of_an_unknown_service_or_kind_exits_two(tmp_path: Path) -> None:
    config = str(write(tmp_path, 9))
    status, _, err = await forewarn("notices", "preview", "first", "-c", config, "--service", "x")
    assert status == 2 and "unknown service x (known: tracking, labels)" in err
    status, _, err = await forewarn("notices", "preview", "outage", "-c", config)
    assert status == 2 and "invalid choice" in err and "Traceback" not in err


def smtp_notices(port: int, starttls: bool = False) -> str:
    flag = "true" if starttls else "false"
    return (
        f'{{from: "Support <support@example.net>", transport: smtp,'
        f" smtp: {{host: 127.0.0.1, port: {port}, starttls: {flag}, timeout: 5s}}}}"
    )


async def test_send_test_reaches_the_smtp_server(tmp_path: Path) -> None:
    async with FailingSmtpServer() as smtp:
        config = write(tmp_path, 9, notices=smtp_notices(smtp.port))
        status, out, err = await forewarn("notices", "send-test", "--to", "me@x.example",
                                          "-c", str(config))  # fmt: skip
        assert status == 0, err
        assert f"127.0.0.1:{smtp.port}" in out
        [received] = smtp.messages
    assert received.rcpt_tos == ["me@x.example"]
    assert received.envelope_from == "support@example.net"
    assert received.message["X-Forewarn-Kind"] == "test"
    assert received.message["Subject"] == "[forewarn] Email de test"
    assert received.message.get_body(("html",)) is not None


@pytest.mark.parametrize(
    ("fault", "step", "said"),
    [
        ("rcpt", "RCPT TO", "550 5.1.1"),
        ("mail", "MAIL FROM", "553 5.1.8"),
        ("starttls", "STARTTLS", "does not offer STARTTLS"),
    ],
)
async def test_send_test_names_the_smtp_step_that_failed(
    tmp_path: Path, fault: str, step: str, said: str
) -> None:
    async with FailingSmtpServer() as smtp:
        smtp.reject_rcpt["me@x.example"] = "550 5.1.1 <me@x.example>: no such user"
        if fault == "mail":
            smtp.fail_mail_with = (553, "5.1.8 sender domain refused")
        config = write(tmp_path, 9, notices=smtp_notices(smtp.port, fault == "starttls"))
        status, out, err = await forewarn("notices", "send-test", "--to", "me@x.example",
                                          "-c", str(config))  # fmt: skip
        commands = list(smtp.commands)
    assert status == 1 and out == ""
    assert f"failed at {step}" in err and said in err, err
    assert "Traceback" not in err
    assert smtp.messages == []
    if fault == "starttls":
        assert "MAIL" not in commands  # nothing is sent in clear when TLS was asked for


async def test_send_test_to_a_closed_port_names_connect(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: the connection is refused
        config = write(tmp_path, 9, notices=smtp_notices(port))
        status, _, err = await forewarn("notices", "send-test", "--to", "me@x.example",
                                        "-c", str(config))  # fmt: skip
    assert status == 1 and "failed at connect" in err and "Traceback" not in err


async def test_send_test_with_the_file_transport_writes_an_eml(tmp_path: Path) -> None:
    config = write(tmp_path, 9)
    status, out, err = await forewarn("notices", "send-test", "--to", "me@x.example",
                                      "-c", str(config))  # fmt: skip
    assert status == 0, err
    [eml] = (tmp_path / "state" / "mail").glob("*.eml")
    assert str(eml) in out
    assert b"To: me@x.example" in eml.read_bytes()
    status, _, err = await forewarn("notices", "send-test", "--to", "a@b@c", "-c", str(config))
    assert status == 2 and "not one plain email address" in err


async def test_send_test_names_auth_when_the_login_is_refused(tmp_path: Path) -> None:
    """A refused login is the AUTH step; the same settings then send once it is accepted."""
    (tmp_path / "password").write_text("wrong\n")
    async with FailingSmtpServer(auth_in_clear=True) as smtp:
        smtp.refuse_auth = True
        notices = smtp_notices(smtp.port).replace(
            "timeout: 5s", f"timeout: 5s, username: forewarn, password_file: {tmp_path}/password"
        )
        config = str(write(tmp_path, 9, notices=notices))
        status, _, err = await forewarn(
            "notices", "send-test", "--to", "me@x.example", "-c", config
        )
        assert status == 1 and "failed at AUTH" in err and "535" in err, err
        assert smtp.messages == [] and "MAIL" not in smtp.commands
        smtp.refuse_auth = False
        status, _, err = await forewarn(
            "notices", "send-test", "--to", "me@x.example", "-c", config
        )
        assert status == 0, err
        assert len(smtp.messages) == 1


def test_preview_without_customers_uses_a_sample_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checks.yaml with no customers yet still previews, for a made-up one."""
    config = tmp_path / "bare.yaml"
    config.write_text(
        "services: [{id: shop, name: {fr: Boutique, en: Web shop}}]\n"
        "checks: [{id: shop-home, service: shop, type: tcp, host: 127.0.0.1, port: 9}]\n"
    )
    assert main(["notices", "preview", "maintenance_planned", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Boutique" in out and "Transports Martin" in out  # default_language fr
