"""Size limits checked before anything is allocated: bytes a file may declare, and the memory a
simulation may need. One place, one environment variable to raise them."""

from __future__ import annotations

import os

from neurocompile.errors import InputDataError

LIMIT_ENV = "NEUROCOMPILE_MAX_BYTES"
_DEFAULT_CAP = 8 * 2**30  # 8 GiB, or half the machine's memory if that is less


def max_bytes() -> int:
    """Bytes one file's arrays (or one run's buffers) may take: $NEUROCOMPILE_MAX_BYTES, else
    the smaller of 8 GiB and half the physical memory."""
    env = os.environ.get(LIMIT_ENV)
    if env:
        try:
            value = int(float(env))
        except ValueError:
            raise InputDataError(f"{LIMIT_ENV}={env!r}: expected a number of bytes") from None
        if value <= 0:
            raise InputDataError(f"{LIMIT_ENV}={env!r}: must be > 0")
        return value
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 2 * _DEFAULT_CAP
    return int(min(_DEFAULT_CAP, physical // 2))


def check_bytes(what: str, needed: int) -> None:
    """Refuse `needed` bytes above the limit, naming what needs them, the limit and the value."""
    limit = max_bytes()
    if needed > limit:
        raise InputDataError(f"{what}: needs {needed:,} bytes, above the limit of {limit:,} "
                             f"(set {LIMIT_ENV} to raise it)")
