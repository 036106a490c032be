"""Delivery channels, registered by the ``channel`` name notices carry."""

from collections.abc import Callable
from pathlib import Path

from monitor.config.load import NoticesConfig
from notifiers.base import Notifier, NotifierError
from notifiers.email import EmailNotifier
from notifiers.webhook import WebhookNotifier

__all__ = ["NOTIFIERS", "Notifier", "NotifierError"]

NOTIFIERS: dict[str, Callable[[NoticesConfig, Path], Notifier]] = {
    "email": EmailNotifier,
    "webhook": WebhookNotifier,
}
