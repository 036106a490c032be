"""The webhook channel's keys in checks.yaml: each mistake is a located error, no secret quoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.load import ConfigError, load_config

S = "services: [{id: t, name: T}]\n"
C = "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/'}]\n"
SECRET = "s3cr3t-v4lue-n0body-may-read"


def errors_of(tmp_path: Path, tail: str) -> list[str]:
    """The errors of S + C + ``tail`` as tmp_path/checks.yaml; @KEY@ names a readable key file."""
    (tmp_path / "key").write_text("0123456789abcdef\n", encoding="utf-8")
    path = tmp_path / "checks.yaml"
    path.write_text(S + C + tail.replace("@KEY@", str(tmp_path / "key")), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.errors


WEBHOOK_ERRORS = [
    pytest.param(
        "notices: {ops: [{type: webhook, preset: pager, url: 'https://h.example/'}]}\n",
        "3: notices.ops[0].preset: must be one of slack | teams | discord | pagerduty",
        id="preset-unknown",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, preset: teams}]}\n",
        "3: notices.ops[0]: needs url: the incoming webhook's address",
        id="url-missing",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, preset: pagerduty}]}\n",
        "3: notices.ops[0]: preset pagerduty needs routing_key_file",
        id="pagerduty-without-key",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, preset: pagerduty, routing_key_file: /no/pd.key}]}\n",
        "3: notices.ops[0].routing_key_file: cannot read /no/pd.key",
        id="routing-key-unreadable",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/', routing_key_file: '@KEY@'}]}\n",
        "3: notices.ops[0]: routing_key_file is only for preset: pagerduty",
        id="routing-key-without-pagerduty",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/', secret_file: /no/k}]}\n",
        "3: notices.ops[0].secret_file: cannot read /no/k",
        id="secret-file-unreadable",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/',\n"
        "                 headers: {Authorization: {file: /no/token}}}]}\n",
        "4: notices.ops[0].headers.Authorization: cannot read /no/token",
        id="header-file-unreadable",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/', template: '{{ subject'}]}\n",
        "3: notices.ops[0].template: line 1 of the template: unexpected end of template",
        id="template-syntax",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/', template: '{{ subjet }}'}]}\n",
        "3: notices.ops[0].template: unknown variable 'subjet' in the template (known: ",
        id="template-unknown-variable",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, preset: slack, url: 'https://h.example/',\n"
        "                 template: '{{ text }}'}]}\n",
        "3: notices.ops[0]: template and preset exclude each other",
        id="template-with-preset",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/', headers: {X-A: {path: x}}}]}\n",
        "3: notices.ops[0].headers.X-A: must be a text or {file: path}",
        id="header-value-shape",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/', headers: {X-A: \"a\\nb\"}}]}\n",
        "3: notices.ops[0].headers.X-A: must not contain control characters",
        id="header-value-line-break",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/', headers: {'X A': v}}]}\n",
        "3: notices.ops[0].headers.X A: unknown key: 'X A' is not a valid header name",
        id="header-name-invalid",
    ),
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'https://h.example/',\n"
        "                 headers: {X-Forewarn-Signature: v}}]}\n",
        "4: notices.ops[0].headers.X-Forewarn-Signature: unknown key: "
        "X-Forewarn-Signature is set by forewarn itself",
        id="header-name-reserved",
    ),
]


@pytest.mark.parametrize(("tail", "expected"), WEBHOOK_ERRORS)
def test_webhook_keys_are_checked(tmp_path: Path, tail: str, expected: str) -> None:
    """Each new webhook key's mistake names the file, line and key."""
    errors = errors_of(tmp_path, tail)
    path = tmp_path / "checks.yaml"
    assert any(e.startswith(f"{path}:{expected}") for e in errors), errors


@pytest.mark.parametrize("key", ["routing_key_file", "secret_file", "headers"])
def test_a_secret_file_in_error_is_never_quoted(tmp_path: Path, key: str) -> None:
    """A secret file holding two lines is refused without quoting a character of it."""
    secret = tmp_path / "secret"
    secret.write_text(f"{SECRET}\n{SECRET}-again\n", encoding="utf-8")
    value = f"{{X-Token: {{file: '{secret}'}}}}" if key == "headers" else f"'{secret}'"
    preset = "preset: pagerduty, " if key == "routing_key_file" else ""
    errors = errors_of(
        tmp_path,
        f"notices: {{ops: [{{type: webhook, {preset}url: 'https://h.example/',\n"
        f"                 {key}: {value}}}]}}\n",
    )
    assert any("must hold one line" in e for e in errors), errors
    assert not any("s3cr3t" in e for e in errors), errors


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    """An empty key file would sign with nothing: refused at load."""
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    tail = (
        "notices: {ops: [{type: webhook, url: 'https://h.example/',\n"
        f"                 secret_file: '{tmp_path / 'empty'}'}}]}}\n"
    )
    assert any("secret_file: " in e and "is empty" in e for e in errors_of(tmp_path, tail))


def test_secret_files_are_found_beside_checks_yaml(tmp_path: Path) -> None:
    """Relative secret paths, header files included, mean the folder of checks.yaml."""
    (tmp_path / "pd.key").write_text("R0UT1NG\n", encoding="utf-8")
    (tmp_path / "token").write_text("Bearer abc\n", encoding="utf-8")
    path = tmp_path / "checks.yaml"
    path.write_text(
        S + C + "notices: {ops: [{type: webhook, preset: pagerduty, routing_key_file: pd.key,\n"
        "                 headers: {Authorization: {file: token}}}]}\n",
        encoding="utf-8",
    )
    (channel,) = load_config(path).notices.ops
    assert channel.routing_key_file == tmp_path / "pd.key"
    assert channel.headers["Authorization"].get_secret_value() == "Bearer abc"
