"""The cluster benchmark's pure helpers: window figures, goals and the generated doc section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.cluster import (
    DOC_END,
    DOC_START,
    goals,
    lateness_figures,
    per_10s,
    publish,
    render,
    spread_of,
)


def test_lateness_counts_only_the_window() -> None:
    seen = [(0.5, 9.0), (1.0, 0.001), (2.0, 0.003), (3.0, 0.002), (4.0, 9.0)]
    figures = lateness_figures(seen, 1.0, 4.0)
    assert figures == {
        "probes_scheduled": 3,
        "lateness_p50_ms": 2.0,
        "lateness_p99_ms": 3.0,
        "lateness_max_ms": 3.0,
    }
    assert per_10s([(1.0, 0.5), (15.0, 0.25)], 0.0, 20.0) == [500.0, 250.0]


def test_spread_of_is_nearest_rank() -> None:
    assert spread_of([3.0, 1.0, 2.0]) == {"p50_s": 2.0, "p95_s": 3.0, "max_s": 3.0}


def outage(p50: float, p95: float) -> dict[str, Any]:
    return {"break_to_email": spread_of([p50, p95]), "first_failure_to_email": spread_of([p50])}


def test_goals_say_met_and_missed() -> None:
    spread = {"checks": 10_000, "offered_probes_per_s": 2000.0, "probes_per_s": 450.0,
              "failed": 0, "lateness_p99_ms_worst_instance": 72_000.0,
              "lateness_max_ms_worst_instance": 72_100.0}  # fmt: skip
    single, quorum = outage(2.0, 2.1), outage(2.2, 2.3)
    figures = {
        "spread": {"n10000": spread},
        "outage": {
            "single_sqlite": single,
            "quorum_three": quorum | {"outages": 12},
            "break_to_email_p50_s_more_with_quorum": 0.2,
            "break_to_email_p95_s_more_with_quorum": 1.5,
            "first_failure_to_email_p50_s_more_with_quorum": 0.2,
            "first_failure_to_email_p95_s_more_with_quorum": 0.2,
        },
    }
    met = {row["goal"].split(":")[0].split(",")[0]: row["met"] for row in goals(figures)}
    assert met["10"] is False  # 10,000 checks…: lateness p99 72 s
    assert met["… failed probes"] is True
    outages = [row["met"] for row in goals(figures) if row["goal"].startswith("Outage")]
    assert outages == [True, False]  # +0.2 s from the first failure; +1.5 s p95 from the break


def test_publish_replaces_only_the_generated_part(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(f"# P\n\nprose\n\n{DOC_START}\nold\n{DOC_END}\nafter\n", encoding="utf-8")
    run = {"date": "d", "quick": True, "command": "c", "file": "f", "figures": {"x": {"y": 1}}}
    publish(doc, render(run))
    text = doc.read_text(encoding="utf-8")
    assert "old" not in text and "| `x.y` | 1 |" in text
    assert text.startswith("# P\n\nprose\n") and text.endswith(f"{DOC_END}\nafter\n")
