"""A read gate: many readers at once, or the WAL purge alone.

A ``TRUNCATE`` checkpoint (which removes an erased record's old pages from
the WAL) must wait until no reader is using the WAL. Readers in a tight loop
can keep it waiting for ever: each new read reuses the read mark of the one
before. The vault's own readers therefore pass through this gate, and the
purge closes it, waits for the readers inside to finish (each holds the gate
for one query), checkpoints, and opens it again. The gate prefers the purge:
once it waits, new readers wait behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._shut = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the gate open for one read."""
        with self._cond:
            while self._shut:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        """Shut the gate, wait for the readers inside, and hold it shut."""
        with self._cond:
            while self._shut:
                self._cond.wait()
            self._shut = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._shut = False
                self._cond.notify_all()
