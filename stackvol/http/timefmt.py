"""How times read in response bodies: each API (and each era of one) writes them its own way.
A time that is not set reads as ``None`` (JSON ``null``) in every form."""

from __future__ import annotations

import datetime as dt


def isotime(value: dt.datetime | None) -> str | None:
    """Nova's os-volumes and Cinder today: ``2013-02-18T14:51:18.528085`` (microseconds always
    shown, no zone)."""
    return value.isoformat(timespec="microseconds") if value else None


def isotime_z(value: dt.datetime | None) -> str | None:
    """Nova's servers and images, and Glance: ``2013-02-18T14:51:18Z`` (whole seconds)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def isotime_micro_z(value: dt.datetime | None) -> str | None:
    """Keystone: ``2013-02-18T14:51:18.528085Z``."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
