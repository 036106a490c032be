"""Flapping: a check fails a share of its requests that random loss cannot explain.

Networks lose the odd request. forewarn counts a check as flapping (intermittently failing,
"unstable" to customers) only when its last ``WINDOW`` results score at least
``FLAPPING_AT``, where each failure scores one but a run of failures at most ``RUN_CAP``: an
outage is one event however long it lasts, while a service failing 30 % of its requests
piles up isolated failures. Under 2 % independent loss the score reaches ``FLAPPING_AT`` with
probability under 7.9e-8 per window (capping runs only lowers the binomial tail computed by
``noise_tail``). It stops flapping once the score is back to ``SETTLED_AT``.

Retries are counted like any result: each is one more independent request, so under random
loss they add samples, not failures. From ``SUSPECT_AT`` separate failures among the last
``RECENT`` results the check is re-probed at its retry interval, so that the question is
settled in minutes rather than in the half hour that 40 results take at a 30 s interval.
Under 2 % loss that costs about 20 % more probes; under 0.1 %, next to nothing.
"""

from __future__ import annotations

from math import comb

WINDOW = 40  # results counted
RUN_CAP = 2  # what one unbroken run of failures can score
FLAPPING_AT = 9  # score that starts flapping
SETTLED_AT = 3  # score at or under which it stops
RECENT = 40  # results that tell whether failures are close together right now
SUSPECT_AT = 2  # separate failure episodes among them from which it is re-probed fast


def push(window: tuple[bool, ...], failed: bool) -> tuple[bool, ...]:
    """``window`` with one more result (True: failed), keeping the newest ``WINDOW``."""
    return (*window, failed)[-WINDOW:]


def score(window: tuple[bool, ...]) -> int:
    """Failures in ``window``, each unbroken run of them counting at most ``RUN_CAP``."""
    if not any(window):
        return 0  # nearly always: the loop below is the detector's costliest line otherwise
    total = run = 0
    for failed in window:
        run = run + 1 if failed else 0
        total += 1 if failed and run <= RUN_CAP else 0
    return total


def still_flapping(flapping: bool, window: tuple[bool, ...]) -> bool:
    """Whether a check flaps now: from a score of FLAPPING_AT until it is back to SETTLED_AT."""
    if flapping:
        return score(window) > SETTLED_AT
    return score(window) >= FLAPPING_AT


def suspect(window: tuple[bool, ...]) -> bool:
    """Separate failures close together: sample faster until it is flapping or clear.

    An outage and its recovery are one episode, so they do not make a check suspect.
    """
    recent = window[-RECENT:]
    if not any(recent):
        return False
    episodes = sum(1 for i, failed in enumerate(recent) if failed and (i == 0 or not recent[i - 1]))
    return episodes >= SUSPECT_AT


def noise_tail(loss: float, window: int = WINDOW, at: int = FLAPPING_AT) -> float:
    """P(at least ``at`` of ``window`` independent results fail) when each fails with ``loss``.

    It bounds the chance that random loss alone starts flapping in one window.
    """
    return sum(
        comb(window, k) * loss**k * (1 - loss) ** (window - k) for k in range(at, window + 1)
    )
