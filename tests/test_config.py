"""load_config: the example files load, and every broken file gets exact, located errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config.errors import MAX_ERRORS
from monitor.config.load import Config, ConfigError, check_config, load_config
from monitor.core.fields import parse_delay, parse_duration
from monitor.probes.dns import DnsCheck
from monitor.probes.http import HttpCheck
from monitor.probes.soap import SoapCheck
from monitor.probes.tcp import TcpCheck
from monitor.probes.tls import TlsCheck
from monitor.probes.transaction import TransactionCheck

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent.relative_to(ROOT) / "data"  # tests/data, as users type it


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run from the repository root so that relative paths mean what they say."""
    monkeypatch.chdir(ROOT)
    yield


def errors_of(path: Path) -> list[str]:
    """The error lines load_config raises for ``path``."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.errors


# Each file breaks one rule. Lines are "file:line: key: message", file relative to tests/data.
INVALID_FILES = [
    ("bad_duration.yaml", ["bad_duration.yaml:9: checks[0].interval: '5 minutes' is not a "
                           "duration such as 500ms, 30s, 5m, 2h, 1d or 1h30m"]),
    ("unknown_key.yaml", ["unknown_key.yaml:11: checks[2].expct: unknown key "
                      "(did you mean 'expect'?)"]),
    ("missing_service_name.yaml", ["missing_service_name.yaml:3: services[0].name: is required"]),
    ("unknown_check_type.yaml",
     ["unknown_check_type.yaml:10: checks[3].type: must be one of "
      "dns | heartbeat | http | soap | tcp | tls | transaction"]),
    ("unknown_service_ref.yaml",
     ["unknown_service_ref.yaml:6: checks[0].service: unknown service 'labels'"]),
    ("duplicate_check_id.yaml",
     ["duplicate_check_id.yaml:9: checks[1].id: duplicate id 'tracking-ws' (first on line 5)"]),
    ("duplicate_yaml_key.yaml",
     ["duplicate_yaml_key.yaml:10: checks[0].interval: duplicate key (first on line 9)"]),
    ("python_tag.yaml",
     ["python_tag.yaml:8: checks[0].url: tag !!python/object/apply:os.system is not allowed"]),
    ("alias_bomb.yaml",
     ["alias_bomb.yaml:8: g[2]: more than 2000000 values once aliases are expanded"]),
    ("negative_duration.yaml",
     ["negative_duration.yaml:9: checks[0].timeout: must be positive, not '-5s'"]),
    ("zero_interval.yaml",
     ["zero_interval.yaml:9: checks[0].interval: must be positive, not '0s'"]),
    ("bad_email.yaml", ["bad_email.yaml:9: customers[0].email: must be an email address"]),
    ("bad_language.yaml", ["bad_language.yaml:10: customers[0].language: must be one of fr | en"]),
    ("bad_timezone.yaml",
     ["bad_timezone.yaml:11: customers[0].timezone: unknown timezone 'Europe/Atlantis'"]),
    ("bad_url_scheme.yaml",
     ["bad_url_scheme.yaml:8: checks[0].url: must be an http:// or https:// URL"]),
    ("missing_env.yaml", ["missing_env.yaml:10: checks[0].headers.Authorization: environment "
                          "variable FOREWARN_TEST_UNSET_TOKEN is not set"]),
    ("bad_csv_customers.yaml",
     ["bad_customers.csv:3: customers[1].email: must be an email address",
      "bad_customers.csv:4: customers[2].services[1]: unknown service 'lables'"]),
    ("not_a_mapping.yaml",
     ["not_a_mapping.yaml:2: the file must be a mapping; it needs at least services: and checks:"]),
    ("invalid_yaml_syntax.yaml",
     ["invalid_yaml_syntax.yaml:6: invalid YAML: did not find expected ',' or ']' "
      "(while parsing a flow sequence that starts on line 4)"]),
    ("wrong_type.yaml", ["wrong_type.yaml:3: daemon.max_concurrency: must be an integer"]),
    ("bad_bool.yaml", ["bad_bool.yaml:8: notices.smtp.starttls: must be true or false"]),
    ("bad_id.yaml", ["bad_id.yaml:3: services[0].id: must be a lowercase id (a-z, 0-9, _ . -)",
                     "bad_id.yaml:6: checks[0].service: must be a lowercase id (a-z, 0-9, _ . -)"]),
    ("bad_down_when.yaml",
     ["bad_down_when.yaml:5: services[0].down_when: must be one of any | all, or an integer"]),
    ("empty_checks.yaml", ["empty_checks.yaml:4: checks: must be a list of checks, not empty"]),
    ("null_section.yaml", ["null_section.yaml:2: daemon: must be a mapping, not empty"]),
    ("non_string_key.yaml",
     ["non_string_key.yaml:10: checks[0].headers: key True must be a string (quote it)",
      "non_string_key.yaml:11: checks[0].headers: key 404 must be a string (quote it)"]),
    ("dependency_cycle.yaml",
     ["dependency_cycle.yaml:3: services[0].depends_on: dependency cycle: shop → edi → shop"]),
    ("missing_secret_file.yaml",
     [f"missing_secret_file.yaml:11: notices.smtp.password_file: cannot read {DATA}{os.sep}"
      "no-such-secret.txt: No such file or directory"]),
    ("unknown_section.yaml", ["unknown_section.yaml:6: escalation: unknown key"]),
    ("bare_number_duration.yaml", [
        "bare_number_duration.yaml:5: services[0].update_every: 1800 is not a duration such as "
        "500ms, 30s, 5m, 2h, 1d or 1h30m (write 1800s)",
        "bare_number_duration.yaml:10: checks[0].interval: 30 is not a duration such as "
        "500ms, 30s, 5m, 2h, 1d or 1h30m (write 30s)",
        "bare_number_duration.yaml:11: checks[0].retry_interval: 2.5 is not a duration such as "
        "500ms, 30s, 5m, 2h, 1d or 1h30m (write 2.5s)",
    ]),
    ("url_credentials_and_auth.yaml", [
        "url_credentials_and_auth.yaml:11: checks[0].auth: cannot be used with user:pass@ in "
        "the url: keep one of them",
        "url_credentials_and_auth.yaml:12: checks[1]: set user:pass@ in the url or an "
        "Authorization header, not both",
    ]),
    ("several_errors.yaml", [
        "several_errors.yaml:3: daemon.listen: must be a string",
        "several_errors.yaml:4: defaults.failure_threshold: must be at least 1",
        "several_errors.yaml:6: services[0].name.de: unknown key: must be one of fr | en",
        "several_errors.yaml:9: checks[0].service: unknown service 'trackin'",
        "several_errors.yaml:12: checks[0].expect.status[1]: must be an integer",
        "several_errors.yaml:17: checks[1].port: must be at most 65535",
        "several_errors.yaml:19: customers[0].name: is required",
        "several_errors.yaml:21: notices.customer_delay: must be 0s or more, not '-1m'",
        "several_errors.yaml:22: notices.transport: must be one of smtp | file",
    ]),
]  # fmt: skip


@pytest.mark.usefixtures("in_repo")
@pytest.mark.parametrize(("name", "expected"), INVALID_FILES, ids=[n for n, _ in INVALID_FILES])
def test_each_invalid_file_gets_its_exact_errors(name: str, expected: list[str]) -> None:
    """Each broken rule is reported as file:line: key path: a readable message."""
    assert errors_of(DATA / name) == [f"{DATA}{os.sep}{line}" for line in expected]


S = "services: [{id: t, name: T}]\n"
C = "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/'}]\n"
WEIRD = [
    ("- 1\n- 2\n", "1: the file must be a mapping; it needs at least services: and checks:"),
    ("42\n", "1: the file must be a mapping; it needs at least services: and checks:"),
    ("", "1: the file is empty; it needs at least services: and checks:"),
    (S + C + "1: x\n", "3: key 1 must be a string (quote it)"),
    ("services:\n" + C, "1: services: must be a list, not empty"),
    ("services: {id: t}\n" + C, "1: services: must be a list"),
    (S, "1: checks: is required"),
    (S + "checks: []\n", "2: checks: must list at least one check"),
    (S + "checks: {id: c}\n", "2: checks: must be a list of checks"),
    (S + "checks: [[1, 2]]\n", "2: checks[0]: must be a mapping"),
    (S + "checks:\n  -\n", "3: checks[0]: must be a mapping"),
    (S + "checks: [{id: c, service: t}]\n", "2: checks[0].type: is required"),
    (S + "checks: [{id: c, service: t, type: 3}]\n",
     "2: checks[0].type: must be one of "
     "dns | heartbeat | http | soap | tcp | tls | transaction"),
    (S + C + "daemon: [1, 2]\n", "3: daemon: must be a mapping"),
    (S + C + "notices: {smtp: []}\n", "3: notices.smtp: must be a mapping"),
    (S + C + "customers: 5\n", "3: customers: must be a list or {file: customers.csv}"),
    (S + C + "customers: [acme]\n", "3: customers[0]: must be a mapping"),
    (S + C + "customers: {file: 3}\n", "3: customers.file: must be a path"),
    ("services: [{id: t, name: {}}]\n" + C, "1: services[0].name: must not be empty"),
    (S + C + "notices: {smtp: {starttls: true, tls: true}}\n",
     "3: notices.smtp: starttls and tls cannot both be true (tls is for port 465)"),
    (S + C + "source: other.yaml\n", "3: source: unknown key"),
    (S + C + "canary: [{id: k, type: tcp, host: 192.0.2.1, port: 53}]\n",
     "3: canary: unknown key (canary is a key of daemon: write it there)"),
    (S + C + "notices: {smtp: {password: hunter2}}\n",
     "3: notices.smtp.password: unknown key (put the secret in a file and name it with "
     "password_file:)"),
    ("services: [{id: t, name: T, down_when: 2}]\n" + C,
     "1: services[0].down_when: is 2 but service 't' has only 1 check"),
    ("services: [{id: t, name: T, depends_on: [t]}]\n" + C,
     "1: services[0].depends_on[0]: a service cannot depend on itself"),
    ("services: [{id: " + "a" * 65 + ", name: T}, {id: t, name: T}]\n" + C,
     "1: services[0].id: must be at most 64 characters"),
    ("services: [{id: -t, name: T}, {id: t, name: T}]\n" + C,
     "1: services[0].id: must start with a lowercase letter or a digit"),
    (S + "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/', "
     "interval: .nan}]\n",
     "2: checks[0].interval: must be a duration such as 500ms, 30s, 5m, 2h, 1d or 1h30m"),
    (S + "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/', "
     "timeout: 400d}]\n", "2: checks[0].timeout: must be at most 365d"),
    (S + "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/', "
     "interval: 30m1h}]\n", "2: checks[0].interval: '30m1h' is not a duration such as 500ms, "
     "30s, 5m, 2h, 1d or 1h30m (largest unit first, each once)"),
    (S + "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/', "
     "interval: 1h30}]\n", "2: checks[0].interval: '1h30' is not a duration such as 500ms, "
     "30s, 5m, 2h, 1d or 1h30m"),
    (S + "checks: [{id: c, service: t, type: http, url: 'https://${host/'}]\n",
     "2: checks[0].url: '${' must start a variable such as ${NAME} (write $${ for '${')"),
    (S + C + "daemon: {listen: 'localhost:99999'}\n",
     "3: daemon.listen: must be host:port, such as 127.0.0.1:9470"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), WEIRD)
def test_weird_but_valid_yaml_gives_a_config_error_with_a_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Lists for mappings, numbers as keys, empty sections: a located ConfigError, no traceback."""
    path = tmp_path / "checks.yaml"
    path.write_text(text, encoding="utf-8")
    assert errors_of(path) == [f"{path}:{expected}"]


# An unknown key names the nearest key the model at that place allows, when one is close.
TYPOS = [
    (S + "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/', "
     "intervall: 30s}]\n", "2: checks[0].intervall: unknown key (did you mean 'interval'?)"),
    (S + "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/', "
     "expect: {statuss: 200}}]\n",
     "2: checks[0].expect.statuss: unknown key (did you mean 'status'?)"),
    (S + "checks: [{id: c, service: t, type: tcp, host: x.example.net, port: 80, tiemout: 5s}]\n",
     "2: checks[0].tiemout: unknown key (did you mean 'timeout'?)"),
    ("services: [{id: t, name: T, update_evry: 5m}]\n" + C,
     "1: services[0].update_evry: unknown key (did you mean 'update_every'?)"),
    (S + C + "defaults: {timout: 5s}\n",
     "3: defaults.timout: unknown key (did you mean 'timeout'?)"),
    (S + C + "notices: {smtp: {hots: mail.example.net}}\n",
     "3: notices.smtp.hots: unknown key (did you mean 'host'?)"),
    (S + C + "customers: [{id: a, name: A, email: a@example.net, langage: fr}]\n",
     "3: customers[0].langage: unknown key (did you mean 'language'?)"),
    (S + C + "service: []\n", "3: service: unknown key (did you mean 'services'?)"),
    (S + C + "escalation: {}\n", "3: escalation: unknown key"),  # nothing close: no guess
    (S + "checks:\n  - {id: c, service: t, type: http, url: 'https://x.example.net/',\n"
     "     expect: {status: [200], interval: 30s}}\n",
     "4: checks[0].expect.interval: unknown key (check the indentation of this line: interval "
     "is a key of checks[0])"),
    (S + C + "notices:\n  smtp:\n    host: mail.example.net\n    customer_delay: 1m\n",
     "6: notices.smtp.customer_delay: unknown key (check the indentation of this line: "
     "customer_delay is a key of notices)"),
    (S + C + "chekcs: []\n", "3: chekcs: unknown key (did you mean 'checks'?)"),
    (S + "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/', "
     "zzz: 1}]\n", "2: checks[0].zzz: unknown key"),
    # Keys the loader fills itself are never offered: they would be refused in turn.
    (S + C + "sorce: x\n", "3: sorce: unknown key"),
    (S + C + "logoo: x\n", "3: logoo: unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), TYPOS)
def test_an_unknown_key_suggests_the_nearest_allowed_one(
    tmp_path: Path, text: str, expected: str
) -> None:
    """``intervall`` → did you mean 'interval'? (from the model at that place), or no guess."""
    assert errors_of(write(tmp_path, text)) == [f"{tmp_path / 'checks.yaml'}:{expected}"]


def test_the_example_checks_yaml_loads() -> None:
    """The commented example at the top of the repository is a valid configuration."""
    config = load_config(ROOT / "checks.yaml")
    assert [s.id for s in config.services] == ["tracking", "labels", "pickup-points", "shop", "edi"]
    assert config.service("edi").depends_on == ["labels"]
    assert config.service("labels").impact_text("en") == "label printing fails"
    assert config.service("tracking").impact_text("fr") == ""  # the generic sentence
    assert config.notices.review_after == 1800.0
    kinds = {check.id: type(check) for check in config.checks}
    assert kinds == {
        "tracking-ws": HttpCheck,
        "labels-ws": HttpCheck,
        "pickup-points-ws": HttpCheck,
        "shop-web": HttpCheck,
        "edi-host": TcpCheck,
        "tracking-ws-details": HttpCheck,
        "labels-soap": SoapCheck,
        "label-then-track": TransactionCheck,
        "tracking-certificate": TlsCheck,
        "tracking-dns": DnsCheck,
    }
    assert {c.language for c in config.customers} == {"fr", "en"}
    assert config.notices.transport == "file"
    assert config.notices.customer_delay == 120.0


def test_the_example_customers_csv_holds_the_example_customers(tmp_path: Path) -> None:
    """customers.example.csv loads and says what checks.yaml's inline customers say."""
    inline = load_config(ROOT / "checks.yaml")
    raw = yaml.safe_load((ROOT / "checks.yaml").read_text(encoding="utf-8"))
    raw["customers"] = {"file": str(ROOT / "customers.example.csv")}
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert load_config(path).customers == inline.customers


def test_the_design_example_loads() -> None:
    """The DESIGN.md example loads, but for the keys later issues add."""
    config = load_config(DATA / "design_example.yaml")
    check = config.checks[0]
    assert isinstance(check, HttpCheck)
    assert (check.interval, check.timeout, check.expect.max_latency) == (15.0, 10.0, 2.0)
    assert check.expect.json_ == {"$.status": "OK"}
    assert config.notices.transport == "smtp"
    assert config.notices.customer_delay == 0.0


def test_the_verbatim_design_example_loads_whole() -> None:
    """Every key of the DESIGN example is known, ops channels and maintenance included."""
    config = load_config(DATA / "design_example_full.yaml")
    assert [c.type for c in config.notices.ops] == ["webhook"]
    (window,) = config.maintenance
    assert (window.id, window.services, window.announce_before) == (
        "release-42",
        ["tracking"],
        86400.0,
    )
    assert (window.end - window.start).total_seconds() == 7200


def write(tmp_path: Path, text: str) -> Path:
    """Write ``text`` as tmp_path/checks.yaml."""
    path = tmp_path / "checks.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MERGED = f"""\
defaults: {{interval: 2m, timeout: 3s, failure_threshold: 5}}
{S}checks:
  - {{id: inherits, service: t, type: http, url: "https://x.example.net/"}}
  - {{id: own, service: t, type: tcp, host: x.example.net, port: 22, interval: 10s,
     failure_threshold: 1}}
"""


def test_defaults_are_merged_into_checks(tmp_path: Path) -> None:
    """A check inherits each timing key it does not set from defaults, and keeps its own."""
    config = load_config(write(tmp_path, MERGED))
    inherits, own = config.checks
    assert (inherits.interval, inherits.timeout, inherits.failure_threshold) == (120.0, 3.0, 5)
    assert inherits.retry_interval == 5.0  # not in defaults: the built-in default
    assert (own.interval, own.timeout, own.failure_threshold) == (10.0, 3.0, 1)


EXPANDED = """\
services: [{id: t, name: T}]
checks:
  - {id: c, service: t, type: http, url: "https://${FOREWARN_TEST_HOST}/v1",
     headers: {X-Template: "$${NOT_EXPANDED}"}}
notices: {smtp: {host: "${FOREWARN_TEST_HOST}", port: "${FOREWARN_TEST_PORT}"}}
"""


def test_environment_variables_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """${NAME} takes the variable's value anywhere in a string; $${ stays a literal ${."""
    monkeypatch.setenv("FOREWARN_TEST_HOST", "ws.example.net")
    monkeypatch.setenv("FOREWARN_TEST_PORT", "2525")
    config = load_config(write(tmp_path, EXPANDED))
    check = config.checks[0]
    assert isinstance(check, HttpCheck)
    assert check.url == "https://ws.example.net/v1"
    assert check.headers == {"X-Template": "${NOT_EXPANDED}"}
    assert (config.notices.smtp.host, config.notices.smtp.port) == ("ws.example.net", 2525)


def test_a_secret_file_is_found_beside_the_config(tmp_path: Path) -> None:
    """A relative password_file is read from the config's folder, whatever the working folder."""
    (tmp_path / "smtp-password").write_text("s3cret\n", encoding="utf-8")
    path = write(tmp_path, S + C + "notices: {smtp: {password_file: smtp-password}}\n")
    assert load_config(path).notices.smtp.password_file == tmp_path / "smtp-password"


def test_a_customers_csv_loads() -> None:
    """CSV customers: BOM and CRLF tolerated, blank lines skipped, services split on ; or space."""
    config = load_config(DATA / "valid_csv_customers.yaml")
    assert [(c.id, c.name, c.language, c.services, c.timezone) for c in config.customers] == [
        ("acme", "ACME Boutique", "fr", ["tracking", "labels"], None),
        ("globex", "Globex, Ltd", "en", ["tracking", "labels"], "Europe/London"),
        ("initech", "Initech", "fr", ["labels"], None),
    ]


CSV_COLUMNS = "(columns: id, name, email, language, services, timezone, detail)"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"id,name,mail\n", [f"1: unknown column 3 {CSV_COLUMNS}",
                              f"1: missing column 'email' {CSV_COLUMNS}"]),
        (b"id,name,email,id\n", [f"1: column 'id' appears twice {CSV_COLUMNS}"]),
        (b"", [f"1: missing column 'id' {CSV_COLUMNS}", f"1: missing column 'name' {CSV_COLUMNS}",
               f"1: missing column 'email' {CSV_COLUMNS}"]),
        (b"id,name,email\na,A,a@x.example.com\n\nb,B,b@x.example.com,fr,t,UTC,extra\n",
         ["4: customers[1]: more fields than columns"]),
        (b"id,name,email\na,Caf\xe9,a@x.example.com\n", ["2: not UTF-8 text"]),
        (b"id,name,email,services\na,A,a@x.example.com,t;nope\n",
         ["2: customers[0].services[1]: unknown service 'nope'"]),
    ],
)  # fmt: skip
def test_customers_csv_problems_name_the_csv_line(
    tmp_path: Path, content: bytes, expected: list[str]
) -> None:
    """Errors in a customers CSV name the CSV file and the line of the row or header."""
    (tmp_path / "people.csv").write_bytes(content)
    path = write(tmp_path, S + C + "customers: {file: people.csv}\n")
    assert errors_of(path) == [f"{tmp_path / 'people.csv'}:{line}" for line in expected]


def test_a_plain_service_name_serves_every_language(tmp_path: Path) -> None:
    """``name: Tracking`` is the same name in French and English."""
    config = load_config(write(tmp_path, S + C))
    assert config.services[0].display_name("fr") == config.services[0].display_name("en") == "T"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("200ms", 0.2), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0),
     ("1.5s", 1.5), (" 2 m ", 120.0), (45, 45.0), ("1h30m", 5400.0), ("2m30s", 150.0),
     ("1d12h", 129600.0), ("1500ms", 1.5), ("1h0m30s", 3630.0), ("1s500ms", 1.5),
     (" 1d2h3m4s5ms ", 93784.005)],
)  # fmt: skip
def test_durations_are_read_in_seconds(text: str | int, seconds: float) -> None:
    """Each unit converts to seconds, compound ones add up; a bare number is already seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "why"),
    [("1h30", "is not a duration such as 500ms, 30s, 5m, 2h, 1d or 1h30m"),
     ("1.5h30m", "is not a duration such as 500ms, 30s, 5m, 2h, 1d or 1h30m"),
     ("30m1h", "1h30m (largest unit first, each once)"),
     ("1h1h", "1h30m (largest unit first, each once)"),
     ("1s1m", "(largest unit first, each once)"),
     ("1h 30m", "is not a duration such as"),
     ("h30m", "is not a duration such as"),
     ("-1h30m", "must be positive, not '-1h30m'"),
     ("300d100d", "largest unit first"),
     ("364d48h", "must be at most 365d")],
)  # fmt: skip
def test_malformed_compound_durations_are_refused_naming_the_form(text: str, why: str) -> None:
    """Whole numbers, largest unit first, each unit once: anything else names the form."""
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert why in str(caught.value)


def test_compound_durations_load_wherever_a_duration_is(tmp_path: Path) -> None:
    """``1h30m`` is a Duration and ``2m30s`` a Delay in checks.yaml, not only in code."""
    config = load_config(
        write(
            tmp_path,
            "services: [{id: t, name: T, update_every: 1h30m, customer_delay: 2m30s}]\n"
            "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/', "
            "interval: 1m30s, timeout: 1500ms}]\n",
        )
    )
    assert (config.services[0].update_every, config.services[0].customer_delay) == (5400.0, 150.0)
    assert (config.checks[0].interval, config.checks[0].timeout) == (90.0, 1.5)


@pytest.mark.parametrize("zero", [0, "0", "0s", "0ms", "0m"])
def test_customer_delay_alone_may_be_zero(zero: str | int) -> None:
    """customer_delay accepts zero however it is written; other durations do not."""
    assert parse_delay(zero) == 0.0
    with pytest.raises(ValueError, match=r"must be positive|is not a duration"):
        parse_duration(zero)


def test_errors_past_the_cap_are_counted_not_listed(tmp_path: Path) -> None:
    """A systematic mistake gives MAX_ERRORS lines and a count of the rest."""
    checks = "".join(
        f"  - {{id: c{i}, service: t, type: http, url: 'https://x.example.net/', interval: x}}\n"
        for i in range(MAX_ERRORS + 20)
    )
    path = write(tmp_path, S + "checks:\n" + checks)
    errors = errors_of(path)
    assert len(errors) == MAX_ERRORS + 1
    assert errors[0].startswith(f"{path}:3: checks[0].interval: 'x' is not a duration")
    assert errors[-1] == f"{path}: 20 more errors not shown"


def test_ten_thousand_checks_load(tmp_path: Path) -> None:
    """A large generated file loads whole."""
    checks = "".join(
        f"  - id: check-{i}\n    service: t\n    type: http\n"
        f"    url: https://ws{i % 50}.example.net/{i}\n    expect: {{status: [200]}}\n"
        for i in range(10_000)
    )
    assert len(load_config(write(tmp_path, S + "checks:\n" + checks)).checks) == 10_000


def assert_loads_or_config_error(path: Path) -> None:
    """load_config returns a Config or raises ConfigError with text lines, nothing else."""
    try:
        assert isinstance(load_config(path), Config)
    except ConfigError as exc:
        assert exc.errors
        assert all(isinstance(line, str) and line.startswith(str(path)) for line in exc.errors)


WORDS = ["daemon", "defaults", "services", "checks", "customers", "notices", "id", "name", "type",
         "http", "tcp", "url", "service", "interval", "expect", "status", "json", "fr", "en",
         "file", "smtp", "from", "transport", "depends_on", "down_when", "email", "language",
         "timezone", "host", "port", "password_file", "<<", "customer_delay", "30s", "${HOME}",
         "${", "https://x.example.net/"]  # fmt: skip
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
LEAVES |= st.sampled_from(WORDS)
KEYS = st.one_of(st.sampled_from(WORDS), st.text(max_size=5), st.integers(), st.booleans())
TREES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)
YAMLISH = st.text(alphabet=st.sampled_from(list("ab1:-[]{}&*!<>,'\"#|\n ${}.%@?~\t")), max_size=200)
QUICK = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@QUICK
@given(text=YAMLISH | st.text(max_size=200))
def test_arbitrary_text_loads_or_raises_config_error(tmp_path: Path, text: str) -> None:
    """Any text, YAML-looking or not, ends in a Config or a ConfigError."""
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    assert_loads_or_config_error(path)


@QUICK
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_load_or_raise_config_error(tmp_path: Path, data: bytes) -> None:
    """Any bytes, UTF-8 or not, end in a Config or a ConfigError."""
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    assert_loads_or_config_error(path)


@QUICK
@given(tree=st.dictionaries(st.sampled_from(WORDS[:6]), TREES, max_size=6) | TREES)
def test_arbitrary_nested_data_loads_or_raises_config_error(tmp_path: Path, tree: object) -> None:
    """Any nesting of YAML values, under the real section names or not, ends the same way."""
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    assert_loads_or_config_error(path)


COMMUNICATION_ERRORS = [
    pytest.param(
        "notices: {ops: [{type: webhook, url: 'ftp://x.example.net/'}]}\n",
        "3: notices.ops[0].url: must be an http:// or https:// URL",
        id="ops-webhook-url",
    ),
    pytest.param(
        "notices: {ops: [{type: pager, to: a@b.example}]}\n",
        "3: notices.ops[0]: must be one of webhook | email",
        id="ops-unknown-type",
    ),
    pytest.param(
        "maintenance: [{id: m, services: [t], start: 2026-11-22T15:00:00+01:00,\n"
        "               end: 2026-11-22T13:00:00+01:00}]\n",
        "3: maintenance[0]: end must be after start",
        id="maintenance-ends-before-start",
    ),
    pytest.param(
        "maintenance: [{id: m, services: [t], start: 2026-11-22T13:00:00,\n"
        "               end: 2026-11-22T15:00:00+01:00}]\n",
        "3: maintenance[0].start: needs a UTC offset, such as 2026-11-22T13:00:00+01:00",
        id="maintenance-naive-time",
    ),
    pytest.param(
        "maintenance: [{id: m, services: [nope], start: 2026-11-22T13:00:00Z,\n"
        "               end: 2026-11-22T15:00:00Z}]\n",
        "3: maintenance[0].services[0]: unknown service 'nope'",
        id="maintenance-unknown-service",
    ),
    pytest.param(
        "daemon: {canary: [{id: c, type: tcp, host: 192.0.2.1, port: 53}]}\n",
        "3: daemon.canary[0].id: check id 'c' is taken",
        id="canary-id-taken",
    ),
    pytest.param(
        "daemon: {canary: [{id: up, type: tcp, host: 192.0.2.1}]}\n",
        "3: daemon.canary[0].port: is required",
        id="canary-check-invalid",
    ),
    pytest.param(
        "customers: [{id: a, name: A, email: a@b.example, detail: verbose}]\n",
        "3: customers[0].detail: ",
        id="customer-detail",
    ),
]


@pytest.mark.parametrize(("tail", "expected"), COMMUNICATION_ERRORS)
def test_communication_keys_are_checked(tmp_path: Path, tail: str, expected: str) -> None:
    """Ops channels, maintenance windows, canary checks and detail errors name line and key."""
    path = write(tmp_path, S + C + tail)
    errors = errors_of(path)
    assert any(e.startswith(f"{path}:{expected}") for e in errors), errors


def test_communication_keys_load(tmp_path: Path) -> None:
    """Canary checks, per-service pace, ops channels and a window load into typed values."""
    config = load_config(
        write(
            tmp_path,
            "daemon: {canary: [{id: up, type: tcp, host: 192.0.2.1, port: 53}]}\n"
            "services: [{id: t, name: T, update_every: 5m, customer_delay: 0s}]\n"
            + C
            + "notices: {digest_window: 0s, max_per_second: 5,\n"
            "          ops: [{type: email, name: oncall, to: oncall@example.net}]}\n"
            "maintenance: [{id: m, services: [t], start: 2026-11-22T13:00:00+01:00,\n"
            "               end: 2026-11-22T15:00:00+01:00, announce_before: 0s}]\n",
        )
    )
    assert [(c.id, c.service) for c in config.canary] == [("up", "canary")]
    assert (config.services[0].update_every, config.services[0].customer_delay) == (300.0, 0.0)
    assert config.notices.ops[0].name == "oncall" and config.notices.max_per_second == 5
    assert config.maintenance[0].start.timestamp() == 1795348800.0


def test_a_broken_template_override_fails_the_config(tmp_path: Path) -> None:
    """templates_dir is checked at load: an unknown variable names the template and its line."""
    folder = tmp_path / "templates" / "fr"
    folder.mkdir(parents=True)
    (folder / "first.subject").write_text("[Incident] {{ servises }}\n", encoding="utf-8")
    path = write(tmp_path, S + C + "notices: {templates_dir: templates}\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:3: notices.templates_dir: ")
    assert "first.subject:1: unknown variable 'servises'" in error


def test_retention_defaults_to_a_week_and_keeps_at_least_an_hour(tmp_path: Path) -> None:
    """daemon.retention is 7 days unless set; 1d loads; 10m is refused with file, line and key."""
    assert load_config(write(tmp_path, S + C)).daemon.retention == 7 * 86400.0
    path = write(tmp_path, "daemon: {retention: 1d}\n" + S + C)
    assert load_config(path).daemon.retention == 86400.0
    path = write(tmp_path, "daemon:\n  timezone: UTC\n  retention: 10m\n" + S + C)
    assert errors_of(path) == [f"{path}:3: daemon.retention: must be at least 1h"]


def test_a_service_impact_in_an_unknown_language_names_its_line(tmp_path: Path) -> None:
    """``impact:`` takes the languages customers read; anything else is a located error."""
    path = tmp_path / "checks.yaml"
    path.write_text(
        "services:\n"
        "  - id: labels\n"
        "    name: Labels\n"
        "    impact: {de: Etiketten fehlen}\n"
        "checks: [{id: l, service: labels, type: tcp, host: 127.0.0.1, port: 9}]\n",
        encoding="utf-8",
    )
    [error] = errors_of(path)
    assert error.startswith(f"{path}:4: services[0].impact")


@pytest.mark.usefixtures("in_repo")
def test_a_broken_api_tokens_file_is_refused_at_load_naming_its_own_line() -> None:
    """daemon.api_tokens_file is read when checks.yaml loads: the error is tokens-file:line."""
    tokens = (DATA / "bad_api_tokens").absolute()
    errors = errors_of(DATA / "bad_tokens_file.yaml")
    assert errors == [f"{tokens}:3: the token is shorter than 20 characters"]
    assert "secret" not in errors[0] and "grafana" not in errors[0]  # name and token swapped


TOKEN_FILES = [
    # content of the tokens file, the line at fault, the message
    (b"ops:tiny-secret\n", 1, "the token is shorter than 20 characters"),
    (b"# who\n\nops:0123456789abcdef0123\nops-0123456789abcdef0123\n", 4,
     "expected name:token or name:token:read"),
    (b"ops:0123456789abcdef0123:admin\n", 1,
     "the scope must be read or write (a token has no ':')"),
    (b"ops:0123456789abcdef0123\xe9\n", 1, "not UTF-8 text"),
    (b"ops:0123456789abcdef0123\xc3\xa9\n", 1,
     "the token has characters outside A-Z a-z 0-9 - . _ ~ + / ="),
    (b"a:0123456789abcdef0123\nb:0123456789abcdef0123:read\n", 2, "same token as line 1"),
    (b"o ps:0123456789abcdef0123\n", 1, "the name must be 1 to 64 of A-Z a-z 0-9 _ . @ -"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "line", "message"), TOKEN_FILES)
def test_each_broken_tokens_file_line_is_named_and_its_content_never_quoted(
    tmp_path: Path, content: bytes, line: int, message: str
) -> None:
    """Every way a token line can be wrong is one tokens-file:line error without its text."""
    tokens = tmp_path / "tokens"
    tokens.write_bytes(content)
    path = tmp_path / "checks.yaml"
    path.write_text(S + C + "daemon: {api_tokens_file: tokens}\n", encoding="utf-8")
    errors = errors_of(path)
    assert errors == [f"{tokens}:{line}: {message}"]
    assert "0123456789abcdef" not in errors[0] and "tiny-secret" not in errors[0]


UPDATE_PACES = [
    # checks.yaml, then the warnings check-config gives (line: key: text)
    (S + C + "notices: {update_every: 4m}\n",
     ["3: notices.update_every: warning: 4m is under 5 minutes: customers of an outage would "
      "get an update email every 4m"]),
    (S + C + "notices: {update_every: 5m}\n", []),
    (S + C + "notices: {customer_delay: 0s}\n", []),  # the built-in 30m
    ("services: [{id: t, name: T, update_every: 30s}]\n" + C + "notices: {update_every: 1h}\n",
     ["1: services[0].update_every: warning: 30s is under 5 minutes: customers of an outage "
      "would get an update email every 30s"]),
    ("services: [{id: t, name: T, update_every: 10m}]\n" + C + "notices: {update_every: 2m}\n",
     ["3: notices.update_every: warning: 2m is under 5 minutes: customers of an outage would "
      "get an update email every 2m"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), UPDATE_PACES)
def test_an_update_pace_under_five_minutes_is_a_warning_not_an_error(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    """update_every below 5 minutes, in notices or a service, loads but is warned about."""
    path = tmp_path / "checks.yaml"
    path.write_text(text, encoding="utf-8")
    config, warnings = check_config(path)
    assert config.services and warnings == [f"{path}:{line}" for line in expected]


CREDENTIALS_TWICE = [
    "{id: c, service: t, type: http, url: 'https://u:p@x.example.net/', "
    "auth: {bearer_file: token}}",
    "{id: c, service: t, type: soap, url: 'https://u@x.example.net/ws', envelope: '<e/>', "
    "auth: {bearer_file: token}}",
    "{id: c, service: t, type: transaction, steps: [{name: a, url: 'https://x.example.net/'}, "
    "{name: b, url: 'https://u:p@x.example.net/'}], auth: {bearer_file: token}}",
]


@pytest.mark.parametrize("check", CREDENTIALS_TWICE, ids=["http", "soap", "transaction"])
def test_credentials_in_the_url_and_an_auth_block_are_refused_for_every_kind(
    tmp_path: Path, check: str
) -> None:
    """The client refuses both at once (every run would fail), so check-config does first."""
    (tmp_path / "token").write_text("a-bearer-token-from-a-file\n", encoding="utf-8")
    path = tmp_path / "checks.yaml"
    path.write_text(S + f"checks: [{check}]\n", encoding="utf-8")
    assert errors_of(path) == [
        f"{path}:2: checks[0].auth: cannot be used with user:pass@ in the url: keep one of them"
    ]


def test_a_secret_file_named_as_customers_is_never_quoted(tmp_path: Path) -> None:
    """A token file given as customers: the errors name columns by position, not content."""
    secret = "WWWWWWWWWWWWWWWWWWWWWWWWWW"
    (tmp_path / "tokens.txt").write_text(f"ops:{secret}\ngrafana:{secret}X:read\n")
    path = write(tmp_path, S + C + "customers: {file: tokens.txt}\n")
    errors = errors_of(path)
    assert errors and f"{tmp_path / 'tokens.txt'}:1: unknown column 1 {CSV_COLUMNS}" in errors
    assert not [e for e in errors if secret in e]


def test_checks_expecting_the_same_thing_share_one_expectation(tmp_path: Path) -> None:
    """Equal ``expect:`` blocks become one object; a different one stays its own, and equal."""
    text = """
services:
  - {id: s, name: S}
checks:
  - {id: a, service: s, type: http, url: "http://127.0.0.1:9/", expect: {status: [200]}}
  - {id: b, service: s, type: http, url: "http://127.0.0.1:9/", expect: {status: [200]}}
  - {id: c, service: s, type: http, url: "http://127.0.0.1:9/", expect: {status: [204]}}
"""
    first, second, other = load_config(write(tmp_path, text)).checks
    assert isinstance(first, HttpCheck) and isinstance(second, HttpCheck)
    assert isinstance(other, HttpCheck)
    assert first.expect is second.expect
    assert other.expect is not first.expect and other.expect.status == [204]
    assert first == load_config(write(tmp_path, text)).checks[0]  # equality is unchanged
