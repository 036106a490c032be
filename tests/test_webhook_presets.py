"""Webhook presets, headers and signatures against a real aiohttp receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from monitor.config.load import Config, load_config
from monitor.domain.incidents import ChangeKind, IncidentChange
from monitor.notices.ops import OpsWriter
from notifiers import NOTIFIERS
from notifiers.base import Notifier, NotifierError
from notifiers.payloads import DISCORD_LIMIT
from tests.builders import NOW, make_incident
from tests.webhook_receiver import Receiver

ROUTING_KEY = "R0UT1NGk3y0123456789abcdef012345"
HMAC_KEY = "hm4c-s3cr3t-for-the-signature"


def configured(tmp_path: Path, channel: str) -> Config:
    """A config whose one ops channel is ``channel`` (a YAML flow mapping)."""
    path = tmp_path / "checks.yaml"
    path.write_text(
        "services: [{id: tracking, name: Parcel tracking}]\n"
        "checks: [{id: tracking-ws, service: tracking, type: http,"
        " url: 'https://x.example.net/'}]\n"
        f"notices: {{ops: [{channel}]}}\n",
        encoding="utf-8",
    )
    return load_config(path)


async def deliver(config: Config, *kinds: ChangeKind) -> None:
    """Plan the ops notices of an incident going through ``kinds`` and send each of them."""
    notifier: Notifier = NOTIFIERS["webhook"].factory(config.notices, config.daemon.state_dir)
    writer = OpsWriter(config)
    incident = make_incident("inc-42", recovered_at=NOW + 60)
    try:
        for step, kind in enumerate(kinds):
            for notice in writer.incident(IncidentChange(kind, incident, NOW + step), NOW):
                await notifier.send(notice)
    finally:
        await notifier.close()


def secret(tmp_path: Path, name: str, value: str) -> Path:
    """A secret file holding ``value`` and a line break, as editors write them."""
    path = tmp_path / name
    path.write_text(value + "\n", encoding="utf-8")
    return path


async def test_slack_preset_posts_text(tmp_path: Path, receiver: Receiver) -> None:
    """Slack: one {"text": …} whose first line is the headline."""
    await deliver(
        configured(tmp_path, f"{{type: webhook, preset: slack, url: '{receiver.url}'}}"),
        ChangeKind.OPENED,
    )
    (body,) = receiver.bodies
    assert set(body) == {"text"}
    assert body["text"].startswith("[forewarn] DOWN: Parcel tracking\n")


def assert_teams_card(body: dict[str, Any]) -> None:
    """The message wrapper with one Adaptive Card, as Teams incoming webhooks take it."""
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"]
    assert all(block["type"] == "TextBlock" and block["text"] for block in card["body"])
    assert card["body"][0]["text"] == "[forewarn] DOWN: Parcel tracking"
    assert "Incident inc-42" in card["body"][1]["text"]


async def test_teams_preset_posts_an_adaptive_card(tmp_path: Path, receiver: Receiver) -> None:
    """Teams: the headline in bold, the facts below it."""
    await deliver(
        configured(tmp_path, f"{{type: webhook, preset: teams, url: '{receiver.url}'}}"),
        ChangeKind.OPENED,
    )
    (body,) = receiver.bodies
    assert_teams_card(body)


async def test_discord_preset_posts_content_within_its_limit(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Discord: {"content": …} cut to 2000 characters, mentions disabled."""
    config = configured(tmp_path, f"{{type: webhook, preset: discord, url: '{receiver.url}'}}")
    notifier = NOTIFIERS["webhook"].factory(config.notices, config.daemon.state_dir)
    writer = OpsWriter(config)
    incident = make_incident("inc-42", detail="@everyone " + "x" * 5000)
    try:
        for notice in writer.incident(IncidentChange(ChangeKind.OPENED, incident, NOW), NOW):
            await notifier.send(notice)
    finally:
        await notifier.close()
    (body,) = receiver.bodies
    assert set(body) == {"content", "allowed_mentions"}
    assert len(body["content"]) == DISCORD_LIMIT and body["content"].endswith("…")
    assert body["content"].startswith("[forewarn] DOWN: Parcel tracking")
    assert body["allowed_mentions"] == {"parse": []}


async def test_pagerduty_triggers_then_resolves_the_same_alert(
    tmp_path: Path, receiver: Receiver
) -> None:
    """PagerDuty Events v2: trigger on opening, resolve on resolution, dedup_key = incident."""
    key = secret(tmp_path, "pd.key", ROUTING_KEY)
    channel = (
        f"{{type: webhook, preset: pagerduty, routing_key_file: '{key}', url: '{receiver.url}'}}"
    )
    await deliver(configured(tmp_path, channel), ChangeKind.OPENED, ChangeKind.RESOLVED)
    trigger, resolve = receiver.bodies
    assert trigger["routing_key"] == resolve["routing_key"] == ROUTING_KEY
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == "inc-42"
    payload = trigger["payload"]
    assert payload["summary"] == "[forewarn] DOWN: Parcel tracking"
    assert payload["source"] == "forewarn"
    assert payload["severity"] == "critical"
    assert "payload" not in resolve


def test_pagerduty_goes_to_the_events_api_by_default(tmp_path: Path) -> None:
    """One line is enough: the URL defaults to PagerDuty's Events API v2."""
    key = secret(tmp_path, "pd.key", ROUTING_KEY)
    config = configured(
        tmp_path, f"{{type: webhook, preset: pagerduty, routing_key_file: '{key}'}}"
    )
    assert config.notices.ops[0].address == "https://events.pagerduty.com/v2/enqueue"
    assert ROUTING_KEY not in repr(config.notices.ops[0])


async def test_headers_inline_and_from_files_are_sent(tmp_path: Path, receiver: Receiver) -> None:
    """Header values written inline or read from a file at load reach the receiver."""
    token = secret(tmp_path, "token", "Bearer t0k3n-from-a-file")
    channel = (
        f"{{type: webhook, url: '{receiver.url}',"
        f" headers: {{X-Team: ops, Authorization: {{file: '{token}'}}}}}}"
    )
    config = configured(tmp_path, channel)
    assert "t0k3n-from-a-file" not in repr(config.notices.ops[0])
    await deliver(config, ChangeKind.OPENED)
    (headers,) = receiver.headers
    assert headers["X-Team"] == "ops"
    assert headers["Authorization"] == "Bearer t0k3n-from-a-file"
    assert headers["Content-Type"] == "application/json"


async def test_signature_verifies_over_timestamp_and_body(
    tmp_path: Path, receiver: Receiver
) -> None:
    """X-Forewarn-Signature is HMAC-SHA256 of "<timestamp>.<body>" under the secret_file's key."""
    key = secret(tmp_path, "hmac.key", HMAC_KEY)
    channel = f"{{type: webhook, url: '{receiver.url}', secret_file: '{key}'}}"
    await deliver(configured(tmp_path, channel), ChangeKind.OPENED)
    (headers,), (raw,) = receiver.headers, receiver.raw
    stamp = headers["X-Forewarn-Timestamp"]
    assert stamp.isdigit()
    expected = hmac.new(HMAC_KEY.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
    assert headers["X-Forewarn-Signature"] == f"sha256={expected.hexdigest()}"
    forged = hmac.new(b"another key", stamp.encode() + b"." + raw, hashlib.sha256)
    assert headers["X-Forewarn-Signature"] != f"sha256={forged.hexdigest()}"


async def test_a_body_template_shapes_the_json(tmp_path: Path, receiver: Receiver) -> None:
    """template: renders the body in the sandbox, values quoted by tojson."""
    template = '{"title": {{ subject|tojson }}, "incident": {{ incident_id|tojson }}}'
    config = configured(
        tmp_path, f"{{type: webhook, url: '{receiver.url}', template: '{template}'}}"
    )
    await deliver(config, ChangeKind.OPENED)
    assert receiver.bodies == [{"title": "[forewarn] DOWN: Parcel tracking", "incident": "inc-42"}]


async def test_a_template_failing_at_send_is_a_setup_error(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A template that passes the load check but fails on a notice's values is not sent."""
    template = "{{ subject.__class__ }}"  # the sandbox refuses the attribute at render time
    config = configured(
        tmp_path, f"{{type: webhook, url: '{receiver.url}', template: '{template}'}}"
    )
    with pytest.raises(NotifierError) as caught:
        await deliver(config, ChangeKind.OPENED)
    assert caught.value.setup and caught.value.permanent
    assert receiver.bodies == []
