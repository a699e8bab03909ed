"""Chain times (integer milliseconds since the Unix epoch, UTC) as FHIR instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carechain.errors import InvalidFhir

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST = 253402300799999  # 9999-12-31T23:59:59.999Z: FHIR years have four digits


def instant(ms: int, path: str) -> str:
    """``1700000000123`` -> ``"2023-11-14T22:13:20.123Z"`` (https://hl7.org/fhir/R4/datatypes.html#instant).

    Integer arithmetic only, so no float rounding can move a millisecond.
    """
    if type(ms) is not int or not 0 <= ms <= _LAST:
        raise InvalidFhir(path, f"time must be integer milliseconds from 0 to {_LAST}, not {ms!r}")
    seconds, millis = divmod(ms, 1000)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"
