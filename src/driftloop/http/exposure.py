"""Loopback or not: what a server bound to ``host`` exposes, said once at start-up.

The model server and the dashboard each describe what they expose; this module decides when
that must be said (any bind address that is not loopback).

Examples
--------
>>> is_loopback("127.0.0.1"), is_loopback("127.0.0.2"), is_loopback("::1"), is_loopback("0.0.0.0")
(True, True, True, False)
>>> exposure_warning("0.0.0.0", "anyone who reaches this port can predict.")
'anyone who reaches this port can predict.'
>>> exposure_warning("localhost", "anything") is None
True
"""

from __future__ import annotations

import ipaddress

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, exposed: str) -> str | None:
    """``exposed`` (what a server on ``host`` shows to anyone who reaches it) when ``host`` is
    not loopback; None on loopback."""
    return None if is_loopback(host) else exposed


__all__ = ["LOOPBACK", "exposure_warning", "is_loopback"]
