"""State files only the daemon's user can read, whatever the umask it was started with.

Under the unit, ``UMask=0077`` already does this; run by hand under the usual 022, the
database (customers' addresses, operators' messages) was world-readable (issue 17).
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700; an existing folder is left as it is."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask; chmod is not


def private_file(path: Path) -> None:
    """Create ``path`` empty if missing; make it 0600 either way."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
