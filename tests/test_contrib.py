"""The Prometheus rules and Grafana dashboard in contrib/: valid, tested, about real metrics.

promtool (Debian's ``prometheus`` package, installed by ``tests/debian-packages.sh``) checks the
rules, runs their unit tests, and parses every dashboard query (loaded as recording rules).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from monitor.runtime.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "contrib" / "prometheus" / "forewarn.rules.yml"
RULE_TESTS = ROOT / "contrib" / "prometheus" / "forewarn.rules.test.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "forewarn.json"
FOREWARN_NAME = re.compile(r"\bforewarn_[a-z_]+")
# Grafana's own variables, replaced by what they stand for so that promtool can parse a query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", '"$instance"': '".*"'}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; its output is kept for the assertion message."""
    found = shutil.which("promtool")
    assert found, "install Debian's prometheus (promtool): sh tests/debian-packages.sh"
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=120, check=False)


def exported_names() -> set[str]:
    """Every sample name forewarn's /metrics can show, from an empty registry's families."""
    metrics = Metrics()
    names: set[str] = set()
    for family in metrics.registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def test_every_alert_rule_is_valid_and_passes_its_unit_tests() -> None:
    """`promtool check rules` and `promtool test rules` both succeed."""
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test_and_an_explanation() -> None:
    """No alert ships untested, and each tells the reader what it means."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    tested = {case["alertname"] for t in tests for case in t["alert_rule_test"]}
    alerts = {rule["alert"] for rule in rules}
    assert alerts == tested
    assert all(
        rule["annotations"]["summary"] and rule["annotations"]["description"] for rule in rules
    )


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """The dashboard's queries, loaded as recording rules, pass `promtool check rules`."""
    rules = []
    for index, query in enumerate(dashboard_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": query})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(rules) >= 9


@pytest.mark.parametrize("path", [RULES, DASHBOARD], ids=["rules", "dashboard"])
def test_contrib_files_name_only_metrics_forewarn_exports(path: Path) -> None:
    """A renamed or removed metric breaks this test, not an operator's alert at 3 a.m."""
    used = set(FOREWARN_NAME.findall(path.read_text(encoding="utf-8")))
    assert used, path
    assert used <= exported_names(), used - exported_names()


def test_metrics_carry_the_process_build_and_check_info_series() -> None:
    """process_* and python_* series, the build's version, and one info series per check."""
    metrics = Metrics()
    metrics.describe([("tracking-ws", "tracking", "http"), ("labels-ws", "labels", "soap")])
    metrics.describe([("tracking-ws", "tracking", "http")])  # a reload dropped labels-ws
    text = generate_latest(metrics.registry).decode()
    version = metadata.version("forewarn")
    assert 'forewarn_build_info{python="' in text and f'version="{version}"' in text
    assert 'forewarn_check_info{check="tracking-ws",service="tracking",type="http"} 1.0' in text
    assert "labels-ws" not in text
    assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text
    assert "python_info" in text and "python_gc_collections_total" in text
