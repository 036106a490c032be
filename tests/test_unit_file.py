"""systemd/forewarn.service: valid for systemd, and hardened (exposure at most 1.5).

``systemd-analyze verify`` checks that every ExecStart= binary exists and is executable, and
/opt/forewarn/bin/forewarn exists only once installed; so verify runs on a copy of the unit
in a temporary folder, with that path replaced by /bin/true. Nothing else changes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "forewarn.service"
INSTALLED = "/opt/forewarn/bin/forewarn"
MAX_EXPOSURE = 1.5


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    """The systemd-analyze binary; its absence is a failure, not a skip."""
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(
            "systemd-analyze not found: install the 'systemd' package "
            "(apt-get install -y systemd) to check the unit file"
        )
    return path


def analyze(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run systemd-analyze with ``args``."""
    return subprocess.run(
        [shutil.which("systemd-analyze") or "systemd-analyze", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_security_exposure_is_at_most_1_5(systemd_analyze: str) -> None:
    """The hardening score systemd computes for the unit, offline (no running systemd)."""
    result = analyze("security", "--offline=true", str(UNIT))
    found = re.search(
        r"Overall exposure level for forewarn\.service: (\d+\.\d+) (\w+)", result.stdout
    )
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def test_verify_is_clean(systemd_analyze: str, tmp_path: Path) -> None:
    """No warning at all, once the installed executable's path points at one that exists."""
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(INSTALLED) == 2  # ExecStartPre= and ExecStart=
    copy = tmp_path / "forewarn.service"
    copy.write_text(text.replace(INSTALLED, "/bin/true"), encoding="utf-8")
    result = analyze("verify", str(copy), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_the_unit_has_what_the_daemon_relies_on() -> None:
    """Settings the daemon's behaviour depends on, read as systemd would (last one wins)."""
    settings: dict[str, str] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"] == "30" and settings["Restart"] == "on-failure"
    assert settings["ExecStart"] == f"{INSTALLED} run -c /etc/forewarn/checks.yaml"
    assert settings["ExecStartPre"] == f"{INSTALLED} check-config -c /etc/forewarn/checks.yaml"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["DynamicUser"] == "yes" and settings["StateDirectory"] == "forewarn"
    assert settings["ConfigurationDirectory"] == "forewarn"
    # The daemon gives deliveries 10 s (STOP_DEADLINE_S), well within TimeoutStopSec.
    assert int(settings["TimeoutStopSec"]) == 30
    assert settings["RestrictAddressFamilies"].split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert "ProcSubset" not in settings, "process metrics read /proc/stat"
    assert "PrivateNetwork" not in settings and "IPAddressDeny" not in settings
    # One value sets soft and hard: the daemon may not call setrlimit (~@resources).
    assert int(settings["LimitNOFILE"]) >= 65536 and ":" not in settings["LimitNOFILE"]
    assert "@resources" in settings["SystemCallFilter"]
