"""Certificates: verifying contexts (with a private CA if asked) and a peer's notAfter."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from typing import Annotated, Any

from cryptography import x509
from pydantic import AfterValidator


def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """The default verifying context; with ``ca_file``, that CA bundle alone is trusted."""
    return ssl.create_default_context(cafile=ca_file)


def _loadable(path: str) -> str:
    try:
        verifying_context(path)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise ValueError(f"cannot load CA certificates from {path}: {why}") from None
    return path


CaFile = Annotated[str, AfterValidator(_loadable)]
"""``ca_file:``: a PEM bundle of the CAs to trust instead of the system's."""


def peer_not_after(ssl_object: Any) -> float | None:
    """When the peer's certificate expires (UNIX time), from an ``ssl.SSLObject``/socket."""
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return None if der is None else der_not_after(der)


def der_not_after(der: bytes) -> float | None:
    """The notAfter of a DER certificate as UNIX time; None when it cannot be read."""
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    except ValueError:
        return None


def der_summary(der: bytes) -> tuple[float | None, str, list[str], str]:
    """notAfter, subject, the names it covers, and its issuer, read from DER."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None, "", [], ""
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    return (
        cert.not_valid_after_utc.timestamp(),
        cert.subject.rfc4514_string(),
        names,
        cert.issuer.rfc4514_string(),
    )


def utc_text(at: float) -> str:
    """``2026-11-21 13:02 UTC``: how an expiry is written in a detail."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
