"""State files are 0600 and state folders 0700 even when forewarn runs under umask 022."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from monitor.config.load import load_config
from monitor.daemon import Daemon
from tests.waiting import until

CONFIG = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, retry_interval: 100ms, failure_threshold: 1}}
services: [{{id: web, name: {{en: Web}}}}]
checks: [{{id: web, service: web, type: tcp, host: 127.0.0.1, port: {port}}}]
customers: [{{id: acme, name: ACME, email: it@acme.example, services: [web]}}]
notices: {{from: "Support <support@example.net>", customer_delay: 0s,
          ops: [{{type: email, to: ops@example.net}}]}}
"""  # the port is closed from the start: ops hear "never seen up" by an .eml file


async def test_state_is_private_under_a_permissive_umask(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    """Database, WAL, lock, key and emails 0600; the state and mail folders 0700."""
    state = tmp_path / "var" / "state"
    (tmp_path / "checks.yaml").write_text(CONFIG.format(state=state, port=unused_tcp_port))
    old = os.umask(0o022)
    try:
        daemon = Daemon(load_config(tmp_path / "checks.yaml"))
        await daemon.start()
        try:
            await until(lambda: any(state.rglob("*.eml")), timeout_s=10)
            files = [p for p in state.rglob("*") if p.is_file()]
            folders = [state, *(p for p in state.rglob("*") if p.is_dir())]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [*files, *folders]}
        finally:
            await daemon.stop()
    finally:
        os.umask(old)
    assert {"forewarn.db", "forewarn.db-wal", "forewarn.db-shm", "forewarn.lock"} <= modes.keys()
    assert {name: mode for name, mode in modes.items() if name in {p.name for p in files}} == {
        p.name: 0o600 for p in files
    }
    assert {p.name: modes[p.name] for p in folders} == {p.name: 0o700 for p in folders}
    assert len(folders) >= 2  # the state folder and the mail folder
