"""The public words, in French and English: states, incident entries, and the reader's language."""

from __future__ import annotations

from monitor.core.fields import LANGUAGES
from monitor.domain.incidents import ChangeKind, IncidentUpdate
from monitor.status.board import PublicState

STATE_WORDS: dict[str, dict[PublicState, str]] = {
    "fr": {
        PublicState.OPERATIONAL: "Opérationnel",
        PublicState.DEGRADED: "Perturbé",
        PublicState.OUTAGE: "Interrompu",
        PublicState.MAINTENANCE: "En maintenance",
        PublicState.UNKNOWN: "En attente de mesures",
    },
    "en": {
        PublicState.OPERATIONAL: "Operational",
        PublicState.DEGRADED: "Degraded",
        PublicState.OUTAGE: "Outage",
        PublicState.MAINTENANCE: "Under maintenance",
        PublicState.UNKNOWN: "Awaiting data",
    },
}

STATUS_WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "investigating": "Analyse en cours",
        "identified": "Cause identifiée",
        "monitoring": "Sous surveillance",
        "resolved": "Résolu",
    },
    "en": {
        "investigating": "Investigating",
        "identified": "Identified",
        "monitoring": "Monitoring",
        "resolved": "Resolved",
    },
}

# What an automatic entry says when the operator wrote nothing.
ENTRY_WORDS: dict[str, dict[str, str]] = {
    "fr": {
        ChangeKind.OPENED: "Nous avons détecté une interruption et l'analysons.",
        ChangeKind.JOINED: "D'autres services sont touchés par le même incident.",
        ChangeKind.UNSTABLE: "Le service répond de façon intermittente.",
        ChangeKind.UPDATE: "L'analyse se poursuit.",
        ChangeKind.IDENTIFIED: "La cause est identifiée.",
        ChangeKind.RECOVERING: "Le service répond de nouveau ; nous vérifions sa stabilité.",
        ChangeKind.RELAPSED: "Le service est de nouveau interrompu.",
        ChangeKind.RESOLVED: "L'incident est résolu.",
        ChangeKind.POSTMORTEM: "Le compte rendu de l'incident est publié.",
    },
    "en": {
        ChangeKind.OPENED: "We detected an interruption and are looking into it.",
        ChangeKind.JOINED: "More services are affected by the same incident.",
        ChangeKind.UNSTABLE: "The service is answering intermittently.",
        ChangeKind.UPDATE: "We are still investigating.",
        ChangeKind.IDENTIFIED: "The cause has been identified.",
        ChangeKind.RECOVERING: "The service answers again; we are making sure it is stable.",
        ChangeKind.RELAPSED: "The service is interrupted again.",
        ChangeKind.RESOLVED: "This incident is resolved.",
        ChangeKind.POSTMORTEM: "The incident report is published.",
    },
}

# ANNOUNCED repeats OPENED for readers of the page, and MERGED is never public.
_SILENT = {ChangeKind.ANNOUNCED, ChangeKind.MERGED}


def shown(update: IncidentUpdate) -> bool:
    """Whether a timeline entry is worth a line: automatic cadence updates are not."""
    if update.kind in _SILENT:
        return False
    return bool(update.message) or update.kind != ChangeKind.UPDATE


def entry_text(update: IncidentUpdate, language: str) -> str:
    """An entry's text: the operator's words, else the automatic sentence."""
    return update.message.text(language) or ENTRY_WORDS[language].get(update.kind, "")


def state_word(state: PublicState, language: str) -> str:
    """A service state in words."""
    return STATE_WORDS[language][state]


def status_word(status: str, language: str) -> str:
    """An incident status in words."""
    return STATUS_WORDS[language].get(status, status)


def pick_language(asked: str | None, accept_language: str | None, default: str) -> str:
    """``?lang=`` if it names a language we have, else the best of Accept-Language, else default."""
    if asked is not None and asked in LANGUAGES:
        return asked
    best, best_q = default, 0.0
    for part in (accept_language or "").split(",")[:20]:  # a hostile header stays cheap
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if language in LANGUAGES and quality > best_q:
            best, best_q = language, quality
    return best
