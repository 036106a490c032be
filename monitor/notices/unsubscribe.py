"""Signed unsubscribe tokens: the address itself, with an HMAC so no one can forge one.

The token carries the address rather than a database id, so a link keeps working whatever
happens to the customer list, and no lookup table has to be kept. The key lives in
``state_dir/unsubscribe.key``; deleting it invalidates every link already sent.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path

from monitor.core.private import private_dir

KEY_FILE = "unsubscribe.key"
KEY_BYTES = 32
_MIN_KEY_BYTES = 16
_MAC_BYTES = 16  # 128 bits: far beyond guessing, and keeps links short
_MAX_TOKEN = 1024  # an address is at most 254 octets; anything longer is not ours
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UnsubscribeSigner:
    """Makes and verifies the tokens of unsubscribe links."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < _MIN_KEY_BYTES:
            raise ValueError(f"unsubscribe key must be at least {_MIN_KEY_BYTES} bytes")
        self._secret = secret

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> UnsubscribeSigner:
        """The signer keyed by ``state_dir/unsubscribe.key``, created on first use."""
        path = state_dir / KEY_FILE
        if not path.exists():
            _create_key(path)
        secret = path.read_bytes()
        if len(secret) < _MIN_KEY_BYTES:
            raise ValueError(f"{path}: too short for an unsubscribe key; delete it to renew")
        return cls(secret)

    def _mac(self, address: bytes) -> bytes:
        return hmac.new(self._secret, address, hashlib.sha256).digest()[:_MAC_BYTES]

    def token(self, address: str) -> str:
        """The URL-safe token for ``address`` (case-insensitive: the same for any spelling)."""
        data = address.lower().encode("utf-8")
        return f"{_encode(data)}.{_encode(self._mac(data))}"

    def address(self, token: str) -> str | None:
        """The address ``token`` was made for, or None when it is malformed or forged."""
        if len(token) > _MAX_TOKEN or not _TOKEN.fullmatch(token):
            return None
        try:
            address = _decode(token.partition(".")[0]).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        # Comparing the whole canonical token also refuses other spellings (base64's spare
        # bits, an address not in lower case): each address has exactly one valid token.
        expected = self.token(address)
        return address if hmac.compare_digest(expected, token) else None


def _create_key(path: Path) -> None:
    """Write a new random key, never replacing one another process wrote meanwhile."""
    private_dir(path.parent)
    # Written in full under a temporary name, then linked: link() fails when the name exists,
    # so of two daemons starting at once exactly one key wins, and no reader sees it half-written.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE}.")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp already made it 0600
            handle.write(secrets.token_bytes(KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def unsubscribe_url(public_url: str, token: str) -> str:
    """The link a customer follows (or a mail client POSTs to) to unsubscribe."""
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"
