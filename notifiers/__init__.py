"""Delivery channels, registered by the ``channel`` name notices carry (an ops ``type:``)."""

from notifiers import email, webhook
from notifiers.base import ChannelKind, ChannelSettings, Message, Notifier, NotifierError

__all__ = ["NOTIFIERS", "ChannelKind", "ChannelSettings", "Message", "Notifier", "NotifierError"]

# One line per channel. The order is the order checks.yaml's errors list the types in.
NOTIFIERS: dict[str, ChannelKind] = {
    "webhook": webhook.KIND,
    "email": email.KIND,
}
