"""docs/getting-started.md followed verbatim in a fresh folder, as a new operator would.

The guide's convention: a fenced block on the line after ``<!-- test: run -->`` is run by
bash (``-e``, in the fresh folder, this Python's ``forewarn`` and ``python`` first on PATH) and
must exit 0; after ``<!-- test: background PORT -->`` it is started and left running, as in a
second terminal, until something listens on 127.0.0.1:PORT; after ``<!-- test: file NAME -->``
it is saved as NAME. Blocks without a marker (installing, systemd) are for the reader only.
"""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "getting-started.md"
STEP = re.compile(
    r"^<!-- test: (run|background|file)(?: (\S+))? -->\n```\w*\n(.*?)^```", re.M | re.S
)
BASH = shutil.which("bash") or "/bin/bash"
HANG_S = 120.0  # only a hang takes this long: every step here ends in about a second


@dataclass(frozen=True)
class Step:
    """One marked block of the guide."""

    kind: str
    arg: str
    code: str


def steps() -> list[Step]:
    """The guide's marked blocks, in order."""
    text = GUIDE.read_text(encoding="utf-8")
    return [Step(kind, arg or "", code) for kind, arg, code in STEP.findall(text)]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Reader:
    """A newcomer at a terminal: a fresh folder, and the processes left running in others."""

    folder: Path
    logs: Path
    outputs: dict[str, str] = field(default_factory=dict)  # a run block's code → its output
    running: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)  # port → process

    @property
    def env(self) -> dict[str, str]:
        """The reader's environment, with the virtual environment activated."""
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1"}

    def follow(self, step: Step) -> None:
        """Do what the step says: save a file, run commands, or leave a process running."""
        if step.kind == "file":
            (self.folder / step.arg).write_text(step.code, encoding="utf-8")
        elif step.kind == "run":
            done = subprocess.run(
                [BASH, "-e", "-c", step.code],
                cwd=self.folder,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=HANG_S,
                check=False,
            )
            assert done.returncode == 0, f"{step.code}\n{done.stdout}{done.stderr}"
            self.outputs[step.code] = done.stdout + done.stderr
        else:
            self.start(int(step.arg), step.code)

    def start(self, port: int, code: str) -> None:
        """Start ``code`` in its own process group and wait until it listens on ``port``."""
        assert not _listening(port), f"127.0.0.1:{port} is taken: the guide needs it free"
        log = self.logs / f"port-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [BASH, "-e", "-c", code],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[port] = process
        deadline = time.monotonic() + HANG_S
        while not _listening(port):
            assert process.poll() is None, f"{code}\nexited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{code}\nnever listened on {port}"
            time.sleep(0.1)

    def stop(self, port: int, signum: int = signal.SIGTERM) -> int:
        """Signal the process group listening on ``port``, as Ctrl-C does; its exit status."""
        process = self.running.pop(port)
        if process.poll() is None:
            os.killpg(process.pid, signum)
        try:
            return process.wait(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise

    def output(self, command: str) -> str:
        """The output of the run block holding ``command``."""
        found = [out for code, out in self.outputs.items() if command in code]
        assert len(found) == 1, f"one run block of the guide should hold {command!r}"
        return found[0]


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    """A fresh folder; whatever the guide left running is stopped afterwards."""
    folder = tmp_path / "forewarn-first"
    folder.mkdir()
    newcomer = Reader(folder=folder, logs=tmp_path)
    try:
        yield newcomer
    finally:
        for port in list(newcomer.running):
            newcomer.stop(port)


def test_the_guide_marks_its_steps_and_names_files_that_exist() -> None:
    """The marked blocks cover every stage, and the repository paths the guide names exist."""
    kinds = [(step.kind, step.arg) for step in steps()]
    assert ("file", "checks.yaml") in kinds
    assert {("background", "8000"), ("background", "8025"), ("background", "9470")} <= set(kinds)
    text = GUIDE.read_text(encoding="utf-8")
    assert "pip install -c constraints.txt ." in text
    named = set(re.findall(r"(?<![/\w])(systemd/[\w.-]+|constraints\.txt)\b", text))
    assert "systemd/forewarn.service" in named
    assert [path for path in named if not (ROOT / path).is_file()] == []


def test_following_the_guide_verbatim_probes_previews_mails_and_runs(reader: Reader) -> None:
    """Each command of the guide succeeds and prints what the guide says, in a fresh folder."""
    guide = GUIDE.read_text(encoding="utf-8")
    for step in steps():
        reader.follow(step)
    checked = reader.output("forewarn check-config").strip()
    assert checked == "checks.yaml: OK — 1 services, 1 checks, 1 customers" and checked in guide
    probed = reader.output("forewarn probe")
    assert re.search(r"^website-health\s+ok\s", probed, re.M) and "1 of 1 passed" in probed
    subject = reader.output("forewarn notices preview").splitlines()[0]
    assert subject == "Subject: [Incident] Our website disrupted" and subject in guide
    sent = reader.output("forewarn notices send-test")
    assert "sent to you@example.net through 127.0.0.1:8025: the server accepted it" in sent
    inbox = list((reader.folder / "inbox" / "new").iterdir())
    assert len(inbox) == 1, inbox
    message = email.message_from_bytes(inbox[0].read_bytes())
    assert message["To"] == "you@example.net" and message["From"] == "Support <support@example.net>"
    health = json.loads(reader.output("/healthz"))
    assert health == {"status": "ok", "checks": 1, "open_incidents": 0, "outbox_pending": 0}
    assert (reader.folder / "state" / "forewarn.db").is_file()
    assert reader.stop(9470, signal.SIGINT) == 0, "Ctrl-C should stop the daemon cleanly"
