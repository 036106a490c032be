"""Print what a fresh install took that differs from constraints.txt (the last green versions).

CI installs today's releases, as a newcomer does; when that turns the suite red, these lines
name the packages that moved since the lock was written. It only prints; exit status 0.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path


def locked(path: Path) -> dict[str, str]:
    """``name == version`` lines of a constraints file, by normalised name."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            pins[_normal(name)] = version.strip()
    return pins


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def main() -> int:
    """Compare the installed distributions with the lock and print the differences."""
    pins = locked(Path(sys.argv[1] if len(sys.argv) > 1 else "constraints.txt"))
    installed = {_normal(d.metadata["Name"]): d.version for d in metadata.distributions()}
    moved = [
        f"  {name}: locked {pins[name]}, installed {installed.get(name, 'nothing')}"
        for name in sorted(pins)
        if installed.get(name, pins[name]) != pins[name]
    ]
    new = [
        f"  {name}: {v} (not in the lock)"
        for name, v in sorted(installed.items())
        if name not in pins and name not in {"forewarn", "pip", "setuptools"}
    ]
    if moved or new:
        print(f"dependency drift since constraints.txt ({len(moved)} moved, {len(new)} new):")
        print("\n".join(moved + new))
    else:
        print("dependency drift: none (the fresh install matches constraints.txt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
