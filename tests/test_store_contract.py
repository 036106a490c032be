"""The Store contract: what every backend must do, run against each (tests/conftest.py).

Only the protocol is used here; what one backend does in its own files is tested beside it
(tests/test_sqlite_store.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.core.words import NOTHING, Words
from monitor.domain.incidents import IncidentStatus, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress
from monitor.store.base import Store
from tests.builders import NOW, make_incident, make_notice
from tests.conftest import StoreOpener


def test_same_notice_key_is_enqueued_once(store: Store) -> None:
    """Committing a notice key again (a replayed change) leaves one outbox row, unchanged."""
    store.commit(notices=[make_notice("inc-1:1:acme")])
    store.commit(notices=[make_notice("inc-1:1:acme", subject="changed")])
    due = store.due_notices(NOW, 10)
    assert [item.notice.subject for item in due] == ["Suivi de colis indisponible"]
    assert store.pending_count() == 1


def test_incidents_upsert_by_id_and_open_ones_are_listed_oldest_first(store: Store) -> None:
    """A later commit of the same incident id replaces it; resolved ones leave the open list."""
    store.commit(incidents=[make_incident("b", NOW + 5), make_incident("a", NOW)])
    resolved = replace(
        make_incident("b", NOW + 5),
        status=IncidentStatus.RESOLVED,
        resolved_at=NOW + 60,
        sequence=3,
    )
    store.commit(incidents=[resolved])
    assert [i.id for i in store.open_incidents()] == ["a"]
    assert store.get_incident("b") == resolved
    assert store.get_incident("missing") is None


def test_due_notices_are_oldest_first_and_limited(store: Store) -> None:
    """Only notices due by ``now`` come back, oldest first, at most ``limit``."""
    store.commit(
        notices=[
            make_notice("k3", NOW + 3),
            make_notice("k1", NOW + 1),
            make_notice("k2", NOW + 2),
            make_notice("later", NOW + 100),
        ]
    )
    assert [i.notice.key for i in store.due_notices(NOW + 50, 2)] == ["k1", "k2"]
    assert [i.notice.key for i in store.due_notices(NOW + 50, 10)] == ["k1", "k2", "k3"]
    item = store.due_notices(NOW + 50, 1)[0]
    assert item.notice == make_notice("k1", NOW + 1)
    assert (item.attempts, item.next_attempt_at) == (0, NOW + 1)
    assert store.next_attempt_at() == NOW + 1


def test_marks_move_the_outbox_and_append_to_the_delivery_log(store: Store) -> None:
    """Retry reschedules, sent and failed take a notice out of the outbox; each logs one row."""
    store.commit(notices=[make_notice("a"), make_notice("b")])
    store.mark_retry("a", NOW + 1, NOW + 30, "421 try later")
    assert [i.notice.key for i in store.due_notices(NOW + 29, 10)] == ["b"]
    assert store.next_attempt_at() == NOW
    store.mark_failed("b", NOW + 2, "550 no such user")
    assert store.next_attempt_at() == NOW + 30
    (item,) = store.due_notices(NOW + 30, 10)
    assert item.attempts == 1
    store.mark_sent("a", NOW + 31, "queued")
    assert store.pending_count() == 0
    assert store.next_attempt_at() is None
    assert store.deliveries("a") == [
        (NOW + 1, "retry", "421 try later"),
        (NOW + 31, "sent", "queued"),
    ]
    assert store.deliveries("b") == [(NOW + 2, "failed", "550 no such user")]
    with pytest.raises(KeyError):
        store.mark_sent("unknown", NOW)


def test_suppression_ignores_case_and_returns_addresses_as_given(store: Store) -> None:
    """A suppressed address matches in any case; the answer uses the caller's spelling."""
    store.suppress("Bad@X.example", "hard_bounce", NOW)
    store.suppress("bad@x.example", "unsubscribed", NOW + 1)  # same address: updated, not added
    asked = ["BAD@x.EXAMPLE", "good@x.example", "bad@x.example"]
    assert store.suppressed(asked) == {"BAD@x.EXAMPLE", "bad@x.example"}
    assert store.suppressed([]) == set()
    assert [address for address, _, _ in store.suppressions()] == ["bad@x.example"]


def test_an_incident_covering_several_services_round_trips(store: Store) -> None:
    """Covered and announced services, flags and operator texts come back as written."""
    written = make_incident(
        services=("platform", "tracking", "labels"),
        announced=("platform", "tracking"),
        check_id="platform-tcp",
        unstable=True,
        message=Words(every="Identified: the database failed."),
        postmortem=Words.of({"fr": "Un certificat a expiré.", "en": "A certificate expired."}),
        maintenance_id="release-42",
        manual=True,
    )
    store.commit(incidents=[written])
    assert store.get_incident("inc-1") == written
    assert store.open_incidents() == [written]


def test_timeline_and_recently_resolved_incidents(store: Store) -> None:
    """Timeline entries come back oldest first; resolved_since lists the newest first."""
    old = replace(make_incident("old"), status=IncidentStatus.RESOLVED, resolved_at=NOW - 86400)
    new = replace(make_incident("new"), status=IncidentStatus.RESOLVED, resolved_at=NOW - 60)
    entries = [
        IncidentUpdate(
            "new", NOW - 120, "identified", "identified", Words(every="Carrier database down.")
        ),
        IncidentUpdate("new", NOW - 60, "resolved", "resolved", NOTHING),
    ]
    store.commit(incidents=[old, new], updates=entries)
    assert store.timeline("new") == entries and store.timeline("old") == []
    assert [i.id for i in store.resolved_since(NOW - 3600)] == ["new"]
    assert [i.id for i in store.resolved_since(NOW - 2 * 86400)] == ["new", "old"]


def test_windows_and_their_progress_survive_a_reopen(
    open_store: StoreOpener, tmp_path: Path
) -> None:
    """An operator's window and what customers were told of it are there after a restart."""
    window = Window("release-42", ("tracking", "labels"), NOW, NOW + 7200, 86400, {"fr": "Màj"})
    progress = WindowProgress("release-42", announced_at=NOW - 86400, told_end=NOW + 7200)
    first = open_store(tmp_path / "state", ZoneInfo("UTC"))
    first.save_window(window)
    first.commit(progress=[progress])
    first.save_window(replace(window, end=NOW + 9000, cancelled=True))
    first.close()
    second = open_store(tmp_path / "state", ZoneInfo("UTC"))
    try:
        assert second.windows() == [replace(window, end=NOW + 9000, cancelled=True)]
        assert second.window_progress() == {"release-42": progress}
    finally:
        second.close()


def test_a_claimed_notice_is_nobody_elses_until_an_outcome_or_its_lease_ends(store: Store) -> None:
    """claim_due takes due notices for one owner; a retry or the lease's end frees them."""
    store.commit(notices=[make_notice("a", NOW), make_notice("b", NOW + 1)])
    assert [i.notice.key for i in store.claim_due(NOW + 5, 1, "one", lease_s=60)] == ["a"]
    assert [i.notice.key for i in store.due_notices(NOW + 5, 10)] == ["b"]
    assert [i.notice.key for i in store.claim_due(NOW + 5, 10, "two", lease_s=60)] == ["b"]
    assert store.claim_due(NOW + 6, 10, "three", lease_s=60) == []
    assert store.next_attempt_at() == NOW + 65  # the first lease to end
    store.mark_retry("a", NOW + 7, NOW + 20, "421 try later")
    assert [i.notice.key for i in store.claim_due(NOW + 20, 10, "three", 60)] == ["a"]
    (late,) = store.claim_due(NOW + 66, 10, "four", lease_s=60)  # b's lease ended unused
    assert (late.notice.key, late.attempts) == ("b", 0)
    assert store.pending_count() == 2
