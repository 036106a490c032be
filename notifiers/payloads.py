"""Webhook bodies: the JSON each chat or paging service documents for its incoming webhooks."""

from __future__ import annotations

from typing import Any, Literal

from notifiers.base import Message

Preset = Literal["slack", "teams", "discord", "pagerduty"]

DISCORD_LIMIT = 2000  # characters of "content" Discord accepts
_PD_SUMMARY_LIMIT = 1024  # characters of payload.summary the Events API v2 keeps


def plain_text(notice: Message) -> str:
    """The ops text, opening with its subject once."""
    # Ops texts start with their title already; a text without one gets the subject.
    text = notice.text.rstrip("\n")
    return text if text.startswith(notice.subject) else f"{notice.subject}\n\n{text}"


def slack(notice: Message) -> dict[str, Any]:
    """Slack (and Mattermost, Rocket.Chat): ``{"text": …}``."""
    return {"text": plain_text(notice)}


def teams(notice: Message) -> dict[str, Any]:
    """Microsoft Teams: an Adaptive Card in the message wrapper its incoming webhooks accept."""
    body = notice.text.rstrip("\n").removeprefix(notice.subject).strip("\n")
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": [
            {"type": "TextBlock", "text": notice.subject, "weight": "Bolder", "wrap": True},
            {"type": "TextBlock", "text": body or notice.subject, "wrap": True},
        ],
    }
    attachment = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": card,
    }
    return {"type": "message", "attachments": [attachment]}


def discord(notice: Message) -> dict[str, Any]:
    """Discord: ``{"content": …}`` of at most 2000 characters; no @mention pings anyone."""
    text = plain_text(notice)
    if len(text) > DISCORD_LIMIT:
        text = text[: DISCORD_LIMIT - 1] + "…"
    return {"content": text, "allowed_mentions": {"parse": []}}


def pagerduty_action(notice: Message) -> Literal["trigger", "resolve"]:
    """``resolve`` for an incident's resolution (or forewarn back online), else ``trigger``."""
    # Ops keys are "<incident>:ops-<change>[-<services>]:<channel>" (monitor/notices/ops.py);
    # tests/test_webhook_presets.py plans real ops notices, so a new format fails there.
    parts = notice.key.split(":")
    if len(parts) > 1 and parts[1] == "ops-resolved":
        return "resolve"
    return "resolve" if parts[0].startswith("canary-online-") else "trigger"


def _severity(notice: Message) -> str:
    parts = notice.key.split(":")
    step = parts[1] if len(parts) > 1 else ""
    if step.startswith(("ops-opened", "ops-joined")):
        return "critical"
    return "warning" if step.startswith("ops-unstable") else "error"


def pagerduty(notice: Message, routing_key: str) -> dict[str, Any]:
    """PagerDuty Events API v2: trigger or resolve the alert whose dedup_key is the incident."""
    action = pagerduty_action(notice)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": notice.incident_id,
    }
    if action == "trigger":
        event["payload"] = {
            "summary": notice.subject[:_PD_SUMMARY_LIMIT],
            "source": "forewarn",
            "severity": _severity(notice),
            "custom_details": {"text": notice.text},
        }
    return event
