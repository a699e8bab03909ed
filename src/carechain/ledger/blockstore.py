"""Append-only block store: a directory of segment files of checksummed records.

Blocks arrive as opaque bytes (canonical JSON made by the caller) with
consecutive heights from 0. A returned append is durable: written and fsynced,
and the directory fsynced when a segment was created (ARCHITECTURE.md, Storage).
Segments ``blocks-000000.seg``, ``blocks-000001.seg``, ... hold one header, then
records; big-endian throughout::

    segment header, 16 bytes
    0               8               12              16
    +---------------+---------------+---------------+
    | "CCBLKSEG"    | version u32=1 | reserved u32=0|
    +---------------+---------------+---------------+

    record, 20 bytes + payload
    0        4                12         16         20                20+length
    +--------+----------------+----------+----------+-----------------+
    | "CCBK" | height u64     | length   | crc32    | payload         |
    |        |                | u32      | u32      | (length bytes)  |
    +--------+----------------+----------+----------+-----------------+
    crc32 = zlib.crc32(bytes 4..16 || payload), the IEEE CRC-32 of zlib and PNG

A new segment starts once the current one holds ``segment_bytes`` or more (it
overshoots by at most one record). It is written as ``blocks-N.seg.tmp``, its
header fsynced, renamed and the directory fsynced, so its header is never torn.

Recovery on open scans every frame (segments are memory-mapped) and rebuilds the
in-memory index height -> (segment, offset, length):

1. Damage with no valid record after it in the last segment is a torn tail, a
   write cut short and never acknowledged: the file is truncated to the end of
   the last good record (a last segment whose header is damaged is removed) and
   ``recovered_tail`` holds the bytes cut.
2. Any other damage (a bad checksum before good records, a height out of
   sequence, a missing segment, a bad header on a segment that is not the last)
   raises ``StorageCorrupt`` naming height, segment and offset: the store refuses
   to open rather than drop acknowledged blocks.
3. A store that would end below ``min_height`` (the height the state store
   reflects) has lost an acknowledged block: ``StorageCorrupt``, nothing cut.

Concurrency: one process (``open`` takes an exclusive ``flock`` on the
directory), one writer, many reader threads. The write lock is held across write
and fsync; the index lock, never held during an fsync, guards the index and the
readers' descriptors (``os.pread``). A block is visible only once durable.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import re
import struct
import threading
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from carechain.errors import NodeFailure, NotFound, StorageCorrupt

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
SEGMENT_MAGIC = b"CCBLKSEG"
SEGMENT_VERSION = 1
SEGMENT_HEADER = SEGMENT_MAGIC + struct.pack(">II", SEGMENT_VERSION, 0)
HEADER_BYTES = len(SEGMENT_HEADER)
RECORD_MARKER = b"CCBK"
_FRAME = struct.Struct(">4sQII")
FRAME_BYTES = _FRAME.size
MAX_PAYLOAD = 0xFFFF_FFFF
_SEGMENT_FILE = re.compile(r"blocks-(\d{6,})\.seg")
_MAX_READ_FDS = 64

_Buffer = bytes | mmap.mmap


def segment_name(number: int) -> str:
    """The file name of segment ``number``: ``blocks-000042.seg``."""
    return f"blocks-{number:06d}.seg"


def _frame(height: int, payload: bytes) -> bytes:
    """One record as written to disk (layout in the module docstring)."""
    crc = zlib.crc32(payload, zlib.crc32(struct.pack(">QI", height, len(payload))))
    return _FRAME.pack(RECORD_MARKER, height, len(payload), crc) + payload


def _check_frame(buf: _Buffer, pos: int) -> tuple[int, int] | str:
    """``(height, length)`` of the valid record at ``pos``, else why it is not one."""
    avail = len(buf) - pos
    if avail < FRAME_BYTES:
        return "truncated record header"
    marker, height, length, crc = _FRAME.unpack_from(buf, pos)
    if marker != RECORD_MARKER:
        return "bad record marker"
    if avail - FRAME_BYTES < length:
        return f"record length {length} runs past the end of the segment"
    start = pos + FRAME_BYTES
    if zlib.crc32(buf[start : start + length], zlib.crc32(buf[pos + 4 : start - 4])) != crc:
        return "checksum mismatch"
    return height, length


def _resync(buf: _Buffer, start: int) -> int | None:
    """Offset of the first valid record at or after ``start``, if any."""
    pos = buf.find(RECORD_MARKER, start)
    while pos != -1:
        if not isinstance(_check_frame(buf, pos), str):
            return pos
        pos = buf.find(RECORD_MARKER, pos + 1)
    return None


@dataclass(frozen=True)
class Problem:
    """One damaged place in a block store.

    ``height`` is the height of the damaged record, that is the one after the
    last good record. ``torn_tail`` is True when nothing valid follows in the
    last segment: an unacknowledged write cut short, which ``open`` cuts.
    """

    height: int
    segment: str
    offset: int
    reason: str
    torn_tail: bool = False

    def __str__(self) -> str:
        kind = " (torn tail)" if self.torn_tail else ""
        return f"height {self.height}: {self.segment} offset {self.offset}: {self.reason}{kind}"


@dataclass
class _Scan:
    """What one pass over the segments found."""

    build_index: bool
    segments: list[int] = field(default_factory=list)
    next_height: int = 0
    resynced: bool = False  # skip the sequence check of the first record after damage
    last_size: int = 0
    problems: list[Problem] = field(default_factory=list)
    seg_of: array[int] = field(default_factory=lambda: array("I"))
    off_of: array[int] = field(default_factory=lambda: array("Q"))
    len_of: array[int] = field(default_factory=lambda: array("I"))


def _scan_directory(directory: Path, *, build_index: bool) -> _Scan:
    """Check every segment header and record frame under ``directory``, in order."""
    scan = _Scan(build_index=build_index)
    for entry in directory.iterdir():
        match = _SEGMENT_FILE.fullmatch(entry.name)
        if match and segment_name(int(match.group(1))) == entry.name:
            scan.segments.append(int(match.group(1)))
    scan.segments.sort()
    expected = 0
    for i, number in enumerate(scan.segments):
        for missing in range(expected, number):
            scan.problems.append(
                Problem(scan.next_height, segment_name(missing), 0, "segment file missing")
            )
            scan.resynced = True
        expected = number + 1
        path = directory / segment_name(number)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        try:
            scan.last_size = size
            _scan_segment(buf, number, i == len(scan.segments) - 1, scan)
        finally:
            if isinstance(buf, mmap.mmap):
                buf.close()
    return scan


def _scan_segment(buf: _Buffer, number: int, is_last: bool, scan: _Scan) -> None:
    """Check one segment's header and records, extending ``scan``."""
    name = segment_name(number)

    def damaged(offset: int, reason: str) -> int | None:
        resume = _resync(buf, offset + 1 if offset else 0)
        torn = resume is None and is_last
        scan.problems.append(Problem(scan.next_height, name, offset, reason, torn))
        scan.resynced = True
        return resume

    pos: int | None = HEADER_BYTES
    if buf[:HEADER_BYTES] != SEGMENT_HEADER:  # damaged, torn, or another version
        pos = damaged(0, "bad segment header")
    while pos is not None and pos < len(buf):
        got = _check_frame(buf, pos)
        if isinstance(got, str):
            pos = damaged(pos, got)
            continue
        height, length = got
        if height != scan.next_height and not scan.resynced:
            reason = f"height {height} out of sequence"
            scan.problems.append(Problem(scan.next_height, name, pos, reason))
        scan.resynced = False
        if scan.build_index and not scan.problems:
            scan.seg_of.append(number)
            scan.off_of.append(pos)
            scan.len_of.append(length)
        scan.next_height = height + 1
        pos += FRAME_BYTES + length


def scan_integrity(directory: str | os.PathLike[str]) -> list[Problem]:
    """Check every frame of the block store in ``directory``; return what is damaged.

    For a stopped node's data directory (``carechain verify``): takes no lock,
    writes nothing and repairs nothing. An empty list means every header and
    record checks out and heights run 0, 1, 2, ... without a gap. Raises
    ``NotFound`` if ``directory`` is not a directory.
    """
    path = Path(directory)
    if not path.is_dir():
        raise NotFound(f"no block store directory at {path}")
    return _scan_directory(path, build_index=False).problems


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:] if done else data, offset + done)


class BlockStore:
    """The append-only block store of one node; see the module docstring.

    Make one with ``BlockStore.open``. ``height`` is -1 while empty.
    """

    def __init__(self, directory: Path, segment_bytes: int, fsync: bool) -> None:
        """Private: use ``BlockStore.open``."""
        if segment_bytes < HEADER_BYTES + FRAME_BYTES:
            raise ValueError(f"segment_bytes {segment_bytes} is too small")
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        self._write_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._closed = False
        self._failed: str | None = None
        self._height = -1
        self._seg_of: array[int] = array("I")
        self._off_of: array[int] = array("Q")
        self._len_of: array[int] = array("I")
        self._read_fds: OrderedDict[int, int] = OrderedDict()
        self._seg_fd: int | None = None
        self._seg_no = -1
        self._seg_size = 0
        self.recovered_tail = 0
        """Bytes of torn tail cut when the store was opened (0 if none)."""

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
        min_height: int = -1,
        repair: bool = True,
    ) -> BlockStore:
        """Open (creating if needed) the block store in ``directory`` and recover it.

        ``min_height`` is the height the state store already reflects: a store
        ending below it has lost an acknowledged block (``StorageCorrupt``).
        With ``repair=False`` a torn tail raises ``StorageCorrupt`` instead of
        being cut, so nothing is written. ``fsync=False`` is for tests only.
        Raises ``NodeFailure`` if another handle holds the store open.
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        store = cls(path, segment_bytes, fsync)
        try:
            fcntl.flock(store._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            store._recover(min_height, repair)
        except OSError as exc:
            store.close()
            busy = isinstance(exc, BlockingIOError)
            why = "is already open elsewhere" if busy else f"could not be opened: {exc}"
            raise NodeFailure(f"block store {path} {why}") from exc
        except BaseException:
            store.close()
            raise
        return store

    def _recover(self, min_height: int, repair: bool) -> None:
        """Scan, check, cut a torn tail and load the index (steps in the module docstring)."""
        if repair:
            for leftover in self._dir.glob("blocks-*.seg.tmp"):
                leftover.unlink()
        scan = _scan_directory(self._dir, build_index=True)
        where = f"block store {self._dir}"
        serious = [p for p in scan.problems if not p.torn_tail]
        if serious:
            raise StorageCorrupt(f"{where} is damaged: {serious[0]}", height=serious[0].height)
        tail = scan.problems[0] if scan.problems else None
        height = len(scan.off_of) - 1
        if height < min_height:
            raise StorageCorrupt(
                f"{where} ends at height {height} but the state store reflects {min_height}: "
                f"acknowledged block {height + 1} is lost{f' ({tail})' if tail else ''}",
                height=height + 1,
            )
        if tail is not None and not repair:
            raise StorageCorrupt(f"{where} has a torn tail: {tail}", height=tail.height)
        if tail is not None:
            self.recovered_tail = self._cut_tail(tail, scan)
        self._seg_of, self._off_of, self._len_of = scan.seg_of, scan.off_of, scan.len_of
        self._height = height
        if scan.segments:
            self._seg_no = scan.segments[-1]
            self._seg_fd = os.open(self._dir / segment_name(self._seg_no), os.O_WRONLY)
            self._seg_size = os.fstat(self._seg_fd).st_size

    def _cut_tail(self, tail: Problem, scan: _Scan) -> int:
        """Truncate the last segment at ``tail.offset`` (remove it if its header is torn)."""
        path = self._dir / tail.segment
        if tail.offset < HEADER_BYTES:
            path.unlink()
            scan.segments.pop()
        else:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, tail.offset)
                os.fsync(fd)
            finally:
                os.close(fd)
        os.fsync(self._dir_fd)
        cut = scan.last_size - tail.offset
        log.warning("block store %s: cut %d bytes of torn tail: %s", self._dir, cut, tail)
        return cut

    @property
    def directory(self) -> Path:
        """The directory holding the segment files."""
        return self._dir

    @property
    def height(self) -> int:
        """Height of the last durable block, -1 while the store is empty."""
        return self._height

    def append(self, height: int, payload: bytes) -> None:
        """Append block ``height`` (which must be ``self.height + 1``); durable on return.

        Raises ``NodeFailure`` for a wrong height, a closed store or a failed
        write; after a failed write the store refuses appends until reopened.
        """
        self.append_many([(height, payload)])

    def append_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Append consecutive blocks with one fsync per segment touched (normally one).

        All are durable on return; none is visible to readers before that.
        """
        batch = list(items)
        with self._write_lock:
            self._check_open()
            if self._failed:
                raise NodeFailure(f"block store {self._dir} failed earlier: {self._failed}")
            expected = self._height + 1
            for height, payload in batch:
                if height != expected:
                    raise NodeFailure(f"append out of order: height {height}, expected {expected}")
                if len(payload) > MAX_PAYLOAD:
                    raise NodeFailure(f"block {height} is too large: {len(payload)} bytes")
                expected += 1
            if not batch:
                return
            try:
                entries = self._write(batch)
            except OSError as exc:
                self._failed = str(exc)
                raise NodeFailure(f"block store {self._dir}: append failed: {exc}") from exc
            with self._index_lock:
                for seg, off, length in entries:
                    self._seg_of.append(seg)
                    self._off_of.append(off)
                    self._len_of.append(length)
                self._height = expected - 1

    def _write(self, batch: list[tuple[int, bytes]]) -> list[tuple[int, int, int]]:
        """Write and fsync ``batch``, rolling segments; return its index entries."""
        entries: list[tuple[int, int, int]] = []
        pending: list[bytes] = []
        end = self._seg_size
        for height, payload in batch:
            if self._seg_fd is None or (end >= self._segment_bytes and end > HEADER_BYTES):
                self._write_out(pending)
                pending = []
                self._start_segment(self._seg_no + 1)
                end = self._seg_size
            frame = _frame(height, payload)
            entries.append((self._seg_no, end, len(payload)))
            pending.append(frame)
            end += len(frame)
        self._write_out(pending)
        return entries

    def _write_out(self, frames: list[bytes]) -> None:
        """Write ``frames`` at the end of the current segment and make them durable."""
        if not frames or self._seg_fd is None:
            return
        data = b"".join(frames)
        _pwrite_all(self._seg_fd, data, self._seg_size)
        if self._fsync:
            os.fdatasync(self._seg_fd)
        self._seg_size += len(data)

    def _start_segment(self, number: int) -> None:
        """Create segment ``number`` atomically (temporary file, fsync, rename, fsync dir)."""
        name = segment_name(number)
        temporary = self._dir / f"{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _pwrite_all(fd, SEGMENT_HEADER, 0)
            if self._fsync:
                os.fdatasync(fd)
            os.replace(temporary, self._dir / name)
            if self._fsync:
                os.fsync(self._dir_fd)
        except BaseException:
            os.close(fd)
            raise
        if self._seg_fd is not None:
            os.close(self._seg_fd)
        self._seg_fd, self._seg_no, self._seg_size = fd, number, HEADER_BYTES

    def get(self, height: int) -> bytes:
        """The payload of block ``height``; ``NotFound`` if absent.

        The record's checksum is checked again: damage since ``open`` raises
        ``StorageCorrupt``.
        """
        with self._index_lock:
            self._check_open()
            if not 0 <= height <= self._height:
                raise NotFound(f"no block at height {height}")
            seg, off, length = self._seg_of[height], self._off_of[height], self._len_of[height]
            try:
                data = os.pread(self._reader_fd(seg), FRAME_BYTES + length, off)
            except OSError as exc:
                raise StorageCorrupt(f"block {height} unreadable: {exc}", height=height) from exc
        got = _check_frame(data, 0)
        if got != (height, length):
            why = got if isinstance(got, str) else f"holds height {got[0]}"
            raise StorageCorrupt(
                f"block {height} at {segment_name(seg)} offset {off}: {why}", height=height
            )
        return data[FRAME_BYTES:]

    def _reader_fd(self, segment: int) -> int:
        """A read-only descriptor for ``segment`` (a small LRU; index lock held)."""
        fd = self._read_fds.get(segment)
        if fd is None:
            fd = os.open(self._dir / segment_name(segment), os.O_RDONLY)
            self._read_fds[segment] = fd
            if len(self._read_fds) > _MAX_READ_FDS:
                os.close(self._read_fds.popitem(last=False)[1])
        else:
            self._read_fds.move_to_end(segment)
        return fd

    def iter_blocks(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """``(height, payload)`` from ``start`` up to ``self.height`` as of this call."""
        if start < 0:
            raise NotFound(f"no block at height {start}")
        return ((h, self.get(h)) for h in range(start, self._height + 1))

    def _check_open(self) -> None:
        if self._closed:
            raise NodeFailure(f"block store {self._dir} is closed")

    def close(self) -> None:
        """Close every file and release the directory lock; idempotent."""
        with self._write_lock, self._index_lock:
            if self._closed:
                return
            self._closed = True
            fds = [*self._read_fds.values(), self._dir_fd]
            if self._seg_fd is not None:
                fds.append(self._seg_fd)
            self._read_fds.clear()
            self._seg_fd = None
            for fd in fds:
                os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
