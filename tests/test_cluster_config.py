"""The cluster's daemon keys: location, lease_period, probe_from, heartbeat_url and its pace."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.load import ConfigError, load_config

HEAD = (
    "services: [{id: t, name: T}]\n"
    "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/'}]\n"
)
NOT_HTTP = "must be an http:// or https:// URL"
BAD_LOCATION = "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


def write(tmp_path: Path, daemon: str) -> Path:
    """A checks.yaml whose third line is ``daemon: {<daemon>}``."""
    path = tmp_path / "checks.yaml"
    path.write_text(HEAD + f"daemon: {{{daemon}}}\n", encoding="utf-8")
    return path


def test_the_cluster_keys_load_as_written(tmp_path: Path) -> None:
    """Each key, at the edges of its range, loads to the value (seconds) it says."""
    daemon = load_config(
        write(
            tmp_path,
            "location: eu-west.1_b, lease_period: 500ms, probe_from: 16, "
            "heartbeat_url: 'https://hc-ping.example.net/0f1e2d3c', heartbeat_every: 1s",
        )
    ).daemon
    assert (daemon.location, daemon.lease_period, daemon.probe_from) == ("eu-west.1_b", 0.5, 16)
    assert daemon.heartbeat_url == "https://hc-ping.example.net/0f1e2d3c"
    assert daemon.heartbeat_every == 1.0
    assert load_config(write(tmp_path, "lease_period: 1m")).daemon.lease_period == 60.0


def test_without_the_keys_the_defaults_hold(tmp_path: Path) -> None:
    """No cluster key: a 5 s lease, two locations per check, no heartbeat, a named location."""
    daemon = load_config(write(tmp_path, "timezone: UTC")).daemon
    assert (daemon.lease_period, daemon.probe_from, daemon.heartbeat_url) == (5.0, 2, None)
    assert daemon.heartbeat_every == 60.0
    assert daemon.location


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("lease_period: 400ms", "daemon.lease_period: must be between 500ms and 1m"),
        ("lease_period: 61s", "daemon.lease_period: must be between 500ms and 1m"),
        ("probe_from: 0", "daemon.probe_from: must be at least 1"),
        ("location: 'paris west'", f"daemon.location: {BAD_LOCATION}"),
        ("location: '-paris'", f"daemon.location: {BAD_LOCATION}"),
        ("heartbeat_url: 'ftp://x.example.net/p'", f"daemon.heartbeat_url: {NOT_HTTP}"),
        ("heartbeat_url: 'hc-ping.example.net/p'", f"daemon.heartbeat_url: {NOT_HTTP}"),
        ("heartbeat_every: 500ms", "daemon.heartbeat_every: must be at least 1s"),
    ],
)
def test_a_bad_cluster_key_names_file_line_and_key(
    tmp_path: Path, setting: str, message: str
) -> None:
    """Each refusal is one error, file:line: daemon.<key>: why."""
    path = write(tmp_path, setting)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.errors == [f"{path}:3: {message}"]
