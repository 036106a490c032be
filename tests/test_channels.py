"""The channel registry: one module and one line per channel, and nothing of monitor inside."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from monitor.config.notices import NoticesConfig
from monitor.core.fields import ID_PATTERN, http_url
from notifiers import NOTIFIERS
from notifiers.base import NAME_PATTERN
from notifiers.webhook import WebhookChannel


def test_channel_names_follow_the_rule_of_every_other_identifier() -> None:
    """Channels keep their own copy of the pattern (they import nothing of monitor)."""
    assert NAME_PATTERN == ID_PATTERN


@pytest.mark.parametrize("name", sorted(NOTIFIERS))
def test_a_channels_settings_are_selected_by_its_registry_name(name: str) -> None:
    """The ``type:`` an ops entry is written with is the key of its line in NOTIFIERS."""
    annotation = NOTIFIERS[name].settings.model_fields["type"].annotation
    assert typing.get_args(annotation) == (name,)


def test_checks_yaml_accepts_exactly_the_registered_channels() -> None:
    """An ops entry of a type nobody registered is refused, naming the ones that exist."""
    config = NoticesConfig.model_validate(
        {
            "ops": [
                {"type": "webhook", "url": "https://hooks.example.net/x"},
                {"type": "email", "name": "oncall", "to": "oncall@example.net"},
            ]
        }
    )
    assert [(c.type, c.address) for c in config.ops] == [
        ("webhook", "https://hooks.example.net/x"),
        ("email", "oncall@example.net"),
    ]
    with pytest.raises(ValidationError) as refused:
        NoticesConfig.model_validate({"ops": [{"type": "pager", "name": "p"}]})
    assert all(name in str(refused.value) for name in NOTIFIERS)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.net/x",
        "HTTP://hooks.example.net:8080/",
        "ftp://hooks.example.net/x",
        "https://hooks.example.net:99999/x",
        "https:///no-host",
        "https://hooks.example.net/a\nb",
    ],
)
def test_webhook_urls_are_held_to_the_rule_of_every_other_url(url: str) -> None:
    """The webhook keeps its own copy of the rule (it imports nothing of monitor)."""
    try:
        http_url(url)
        ours = "accepted"
    except ValueError as exc:
        ours = str(exc)
    try:
        WebhookChannel(type="webhook", url=url)
        theirs = "accepted"
    except ValidationError as exc:
        theirs = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    assert ours == theirs
