"""The status page's own words and figures, in French and English: labels, dates, percentages."""

from __future__ import annotations

import math
from datetime import date

from monitor.status.board import DayCell

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "État des services",
        "logo": "Logo {name}",
        "logo_alone": "Logo",
        "contact": "Contact\u00a0:",
        "contact_page": "Page de contact",
        "incident_title": "Incident",
        "not_found_title": "Page introuvable",
        "not_found": "Cet incident n'existe pas ou n'est plus affiché.",
        "home": "Retour à l'état des services",
        "all_ok": "Tous les services sont opérationnels",
        "affected": "Certains services sont perturbés",
        "maintenance_now": "Maintenance en cours",
        "awaiting": "Mesures en cours",
        "services": "Services",
        "uptime": "de disponibilité sur {n} jours",
        "uptime_one": "de disponibilité sur 1 jour",
        "bar": "Disponibilité des 90 derniers jours",
        "bar_start": "Il y a 90 jours",
        "bar_start_30": "Il y a 30 jours",
        "bar_end": "Aujourd'hui",
        "since": "depuis le",
        "open": "Incidents en cours",
        "maintenance": "Maintenance",
        "running": "En cours",
        "upcoming": "Prévue",
        "cancelled": "Annulée",
        "done": "Terminée",
        "past_maintenance": "Maintenances des 14 derniers jours",
        "resolved": "Incidents résolus des 14 derniers jours",
        "no_resolved": "Aucun incident ces 14 derniers jours.",
        "started": "Début",
        "next_update": "Prochain point",
        "recovered": "Rétablissement",
        "duration": "Durée",
        "intermittent": "intermittent",
        "timeline": "Chronologie",
        "postmortem": "Compte rendu",
        "details": "Détails de l'incident",
        "updated": "Dernière mise à jour\u00a0:",
        "feed": "Flux Atom",
        "api": "API JSON",
        "refresh_off": "Désactiver l'actualisation automatique",
        "refresh_now": "Actualiser",
        "no_data": "pas de données",
        "from_to": "du {start} au {end}",
    },
    "en": {
        "title": "Service status",
        "logo": "{name} logo",
        "logo_alone": "Logo",
        "contact": "Contact:",
        "contact_page": "Contact page",
        "incident_title": "Incident",
        "not_found_title": "Page not found",
        "not_found": "This incident does not exist or is no longer listed.",
        "home": "Back to service status",
        "all_ok": "All services are operational",
        "affected": "Some services are affected",
        "maintenance_now": "Maintenance in progress",
        "awaiting": "Waiting for measurements",
        "services": "Services",
        "uptime": "uptime over {n} days",
        "uptime_one": "uptime over 1 day",
        "bar": "Availability over the last 90 days",
        "bar_start": "90 days ago",
        "bar_start_30": "30 days ago",
        "bar_end": "Today",
        "since": "since",
        "open": "Ongoing incidents",
        "maintenance": "Maintenance",
        "running": "In progress",
        "upcoming": "Scheduled",
        "cancelled": "Cancelled",
        "done": "Completed",
        "past_maintenance": "Maintenance in the last 14 days",
        "resolved": "Incidents resolved in the last 14 days",
        "no_resolved": "No incidents in the last 14 days.",
        "started": "Started",
        "next_update": "Next update",
        "recovered": "Recovered",
        "duration": "Duration",
        "intermittent": "intermittent",
        "timeline": "Timeline",
        "postmortem": "Incident report",
        "details": "Incident details",
        "updated": "Last updated:",
        "feed": "Atom feed",
        "api": "JSON API",
        "refresh_off": "Turn off automatic refresh",
        "refresh_now": "Refresh",
        "no_data": "no data",
        "from_to": "from {start} to {end}",
    },
}

# Each language named in itself, for the switch that offers it.
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}

_MONTHS = {
    "fr": [
        "janv.",
        "févr.",
        "mars",
        "avr.",
        "mai",
        "juin",
        "juil.",
        "août",
        "sept.",
        "oct.",
        "nov.",
        "déc.",
    ],
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
}

# Colour classes of a day, best first, with the lowest availability each allows.
_LEVELS = (("d-ok", 0.999), ("d-minor", 0.99), ("d-major", 0.95))


def day_label(day: date, language: str) -> str:
    """A calendar day as a reader writes it: ``21 nov. 2026`` or ``21 Nov 2026``."""
    return f"{day.day} {_MONTHS[language][day.month - 1]} {day.year}"


def percent(ratio: float | None, language: str) -> str:
    """An availability with two decimals (``99,95 %`` / ``99.95%``), or the no-data words."""
    if ratio is None:
        return LABELS[language]["no_data"]
    # Truncated, not rounded: 99.996 % must not read as a perfect 100.00 %.
    shown = math.floor(round(ratio * 10000, 6)) / 100  # round first: 0.9995 * 10000 < 9995
    if language == "fr":
        return f"{shown:.2f}".replace(".", ",") + "\u00a0%"  # no break before the sign
    return f"{shown:.2f}%"


def uptime_words(days: int, language: str) -> str:
    """What an uptime figure was measured over: ``uptime over 12 days``."""
    labels = LABELS[language]
    return labels["uptime_one"] if days == 1 else labels["uptime"].format(n=days)


def day_title(cell: DayCell, language: str) -> str:
    """A bar cell's tooltip: ``21 nov. 2026 · 99,95 % · 1 incident``."""
    parts = [day_label(cell.day, language), percent(cell.availability, language)]
    count = len(cell.incidents)
    if count:
        parts.append(f"{count} incident{'s' if count > 1 else ''}")
    return " · ".join(parts)


def day_class(cell: DayCell) -> str:
    """A bar cell's colour class from its availability; a day with an incident is never green.

    Customers were told of an outage that day, so it shows; but its colour is its measure:
    a blip of seconds is no red day, a 20-minute outage (98.6 %) is orange, a long one red.
    """
    if cell.availability is None:
        return "d-minor" if cell.incidents else "d-none"
    shade = next((name for name, floor in _LEVELS if cell.availability >= floor), "d-bad")
    return "d-minor" if cell.incidents and shade == "d-ok" else shade
