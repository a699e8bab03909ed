"""Tests of the append-only block store, on real files in tmp_path.

Frames are built here independently from the layout in the module docstring
(``frame`` below), so the tests also pin the on-disk format.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carechain.ledger.blockstore as blockstore
from carechain.errors import NodeFailure, NotFound, StorageCorrupt
from carechain.ledger.blockstore import BlockStore, Problem, scan_integrity

HEADER = b"CCBLKSEG" + struct.pack(">II", 1, 0)


def frame(height: int, payload: bytes) -> bytes:
    """A record per the documented layout: marker, height, length, crc32, payload."""
    head = struct.pack(">QI", height, len(payload))
    return b"CCBK" + head + struct.pack(">I", zlib.crc32(head + payload)) + payload


def block(height: int, size: int = 40) -> bytes:
    """A deterministic canonical-JSON-like payload of about ``size`` bytes."""
    return json.dumps({"height": height, "pad": "x" * size}, separators=(",", ":")).encode()


def seg(directory: Path, number: int = 0) -> Path:
    return directory / f"blocks-{number:06d}.seg"


def make_store(directory: Path, count: int, **kwargs: Any) -> list[bytes]:
    """Create a store holding blocks 0..count-1; return their payloads."""
    payloads = [block(h, 30 + h) for h in range(count)]
    with BlockStore.open(directory, **kwargs) as store:
        for h, p in enumerate(payloads):
            store.append(h, p)
    return payloads


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def assert_blocks(directory: Path, payloads: list[bytes], **kwargs: Any) -> None:
    with BlockStore.open(directory, **kwargs) as store:
        assert store.height == len(payloads) - 1
        assert [p for _, p in store.iter_blocks()] == payloads


# --- the happy path --------------------------------------------------------------------------


def test_empty_store(tmp_path: Path) -> None:
    with BlockStore.open(tmp_path / "new" / "blocks") as store:
        assert store.height == -1
        assert list(store.iter_blocks()) == []
        with pytest.raises(NotFound):
            store.get(0)
    assert scan_integrity(tmp_path / "new" / "blocks") == []


def test_files_match_the_documented_layout(tmp_path: Path) -> None:
    payloads = make_store(tmp_path, 3)
    expected = HEADER + b"".join(frame(h, p) for h, p in enumerate(payloads))
    assert seg(tmp_path).read_bytes() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks-000000.seg"]


def test_append_get_iter_across_segment_rollover(tmp_path: Path) -> None:
    payloads = [block(h, 50 + 13 * h % 300) for h in range(60)]
    with BlockStore.open(tmp_path, segment_bytes=1024) as store:
        for h, p in enumerate(payloads[:40]):
            store.append(h, p)
        store.append_many(enumerate(payloads[40:], start=40))
        assert store.height == 59
        assert [store.get(h) for h in range(60)] == payloads
        assert list(store.iter_blocks(17)) == list(enumerate(payloads))[17:]
        with pytest.raises(NotFound):
            store.get(60)
        with pytest.raises(NotFound):
            store.get(-1)
    segments = sorted(tmp_path.glob("blocks-*.seg"))
    assert len(segments) > 5
    biggest_frame = max(len(frame(0, p)) for p in payloads)
    for path in segments:
        assert path.read_bytes().startswith(HEADER)
        assert path.stat().st_size < 1024 + biggest_frame
    more = [*payloads, block(60)]
    with BlockStore.open(tmp_path, segment_bytes=1024) as store:
        assert store.recovered_tail == 0
        store.append(60, more[60])
    assert_blocks(tmp_path, more)
    assert scan_integrity(tmp_path) == []


def test_append_with_wrong_height_refused(tmp_path: Path) -> None:
    with BlockStore.open(tmp_path) as store:
        with pytest.raises(NodeFailure, match="expected 0"):
            store.append(1, b"{}")
        store.append(0, b"{}")
        size = seg(tmp_path).stat().st_size
        for bad in (0, 2, -1):
            with pytest.raises(NodeFailure, match="expected 1"):
                store.append(bad, b"{}")
        with pytest.raises(NodeFailure):
            store.append_many([(1, b"{}"), (3, b"{}")])
        assert store.height == 0
        assert seg(tmp_path).stat().st_size == size


def test_append_many_fsyncs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fdatasync

    def counting_fdatasync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting_fdatasync)
    with BlockStore.open(tmp_path) as store:
        store.append(0, b"{}")
        calls.clear()
        store.append_many((h, block(h)) for h in range(1, 101))
        assert len(calls) == 1
        store.append(101, b"{}")
        assert len(calls) == 2


def test_one_open_handle_at_a_time(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path)
    with pytest.raises(NodeFailure, match="already open"):
        BlockStore.open(tmp_path)
    store.close()
    store.close()
    with pytest.raises(NodeFailure, match="closed"):
        store.append(0, b"{}")
    with pytest.raises(NodeFailure, match="closed"):
        store.get(0)
    BlockStore.open(tmp_path).close()


def test_leftover_temporary_segment_removed(tmp_path: Path) -> None:
    payloads = make_store(tmp_path, 2)
    (tmp_path / "blocks-000001.seg.tmp").write_bytes(HEADER[:5])
    assert_blocks(tmp_path, payloads)
    assert not (tmp_path / "blocks-000001.seg.tmp").exists()


# --- recovery of a torn tail -----------------------------------------------------------------


def test_torn_tail_cut_at_every_byte_of_the_last_record(tmp_path: Path) -> None:
    payloads = make_store(tmp_path / "base", 3)
    full = seg(tmp_path / "base").read_bytes()
    start = len(full) - len(frame(2, payloads[2]))
    for cut in range(start, len(full)):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        seg(directory).write_bytes(full[:cut])
        with pytest.raises(StorageCorrupt) as excinfo:
            BlockStore.open(directory, min_height=2)
        assert excinfo.value.height == 2
        problems = scan_integrity(directory)
        torn = [] if cut == start else [Problem(2, "blocks-000000.seg", start, "", torn_tail=True)]
        assert [replace(p, reason="") for p in problems] == torn
        with BlockStore.open(directory, min_height=1) as store:
            assert store.recovered_tail == cut - start
            assert store.height == 1
            store.append(2, b"{}")
        assert seg(directory).read_bytes() == full[:start] + frame(2, b"{}")
        assert_blocks(directory, [*payloads[:2], b"{}"])


def test_torn_segment_header_removes_the_new_segment(tmp_path: Path) -> None:
    base = tmp_path / "base"
    payloads = make_store(base, 2, segment_bytes=40)
    assert seg(base, 1).exists()
    last = seg(base, 1).read_bytes()
    for cut in range(len(last)):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        seg(directory, 0).write_bytes(seg(base, 0).read_bytes())
        seg(directory, 1).write_bytes(last[:cut])
        with BlockStore.open(directory, segment_bytes=40) as store:
            assert store.height == 0
            assert store.recovered_tail == (cut if cut < len(HEADER) else cut - len(HEADER))
            assert seg(directory, 1).exists() == (cut >= len(HEADER))
            store.append(1, payloads[1])
        assert_blocks(directory, payloads, segment_bytes=40)


@pytest.mark.parametrize(
    "garbage",
    [b"\0", b"\0" * 4096, b"CCBK", b"CCBK" + b"\0" * 30, bytes(range(256)) * 3, HEADER],
    ids=["one-zero", "zeros", "marker", "marker-zeros", "bytes", "segment-header"],
)
def test_garbage_after_the_tail_cut(
    tmp_path: Path, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    payloads = make_store(tmp_path, 3)
    good = seg(tmp_path).read_bytes()
    with seg(tmp_path).open("ab") as f:
        f.write(garbage)
    with BlockStore.open(tmp_path) as store:
        assert store.recovered_tail == len(garbage)
        assert store.height == 2
    assert f"cut {len(garbage)} bytes of torn tail" in caplog.text
    assert seg(tmp_path).read_bytes() == good
    assert_blocks(tmp_path, payloads)


def test_garbage_record_with_bad_checksum_after_the_tail_cut(tmp_path: Path) -> None:
    payloads = make_store(tmp_path, 3)
    bad = bytearray(frame(3, b"{}"))
    bad[-1] ^= 1
    with seg(tmp_path).open("ab") as f:
        f.write(bad)
    with BlockStore.open(tmp_path) as store:
        assert store.recovered_tail == len(bad)
    assert_blocks(tmp_path, payloads)


def test_torn_tail_not_cut_without_repair(tmp_path: Path) -> None:
    make_store(tmp_path, 2)
    with seg(tmp_path).open("ab") as f:
        f.write(b"CCBK\0")
    before = seg(tmp_path).read_bytes()
    with pytest.raises(StorageCorrupt, match="torn tail") as excinfo:
        BlockStore.open(tmp_path, repair=False)
    assert excinfo.value.height == 2
    assert seg(tmp_path).read_bytes() == before
    with BlockStore.open(tmp_path) as store:
        assert store.recovered_tail == 5
    with BlockStore.open(tmp_path, repair=False) as store:
        assert store.height == 1


# --- corruption that is not a torn tail -------------------------------------------------------


def test_flipped_byte_in_a_middle_record_refuses_to_open(tmp_path: Path) -> None:
    payloads = make_store(tmp_path / "base", 3)
    full = seg(tmp_path / "base").read_bytes()
    start = len(HEADER) + len(frame(0, payloads[0]))
    for offset in range(start, start + len(frame(1, payloads[1]))):
        directory = tmp_path / f"flip{offset}"
        directory.mkdir()
        seg(directory).write_bytes(full)
        flip(seg(directory), offset)
        damaged = seg(directory).read_bytes()
        with pytest.raises(
            StorageCorrupt, match=re.escape(f"blocks-000000.seg offset {start}:")
        ) as excinfo:
            BlockStore.open(directory)
        assert excinfo.value.height == 1
        assert seg(directory).read_bytes() == damaged, "a refused open must not write"
        [problem] = scan_integrity(directory)
        assert (problem.height, problem.offset, problem.torn_tail) == (1, start, False)


def test_flipped_byte_in_the_last_record(tmp_path: Path) -> None:
    payloads = make_store(tmp_path / "base", 3)
    full = seg(tmp_path / "base").read_bytes()
    start = len(full) - len(frame(2, payloads[2]))
    for offset in range(start, len(full)):
        directory = tmp_path / f"flip{offset}"
        directory.mkdir()
        seg(directory).write_bytes(full)
        flip(seg(directory), offset)
        damaged = seg(directory).read_bytes()
        with pytest.raises(StorageCorrupt, match="acknowledged block 2") as excinfo:
            BlockStore.open(directory, min_height=2)
        assert excinfo.value.height == 2
        assert seg(directory).read_bytes() == damaged
        with BlockStore.open(directory, min_height=1) as store:
            assert store.height == 1
            assert store.recovered_tail == len(full) - start
        assert seg(directory).read_bytes() == full[:start]


def test_height_out_of_sequence_refuses_to_open(tmp_path: Path) -> None:
    make_store(tmp_path, 3)
    with seg(tmp_path).open("ab") as f:
        f.write(frame(5, b"{}"))
    with pytest.raises(StorageCorrupt, match="height 5 out of sequence") as excinfo:
        BlockStore.open(tmp_path)
    assert excinfo.value.height == 3


def test_duplicated_record_refuses_to_open(tmp_path: Path) -> None:
    payloads = make_store(tmp_path, 3)
    with seg(tmp_path).open("ab") as f:
        f.write(frame(2, payloads[2]))
    with pytest.raises(StorageCorrupt, match="out of sequence"):
        BlockStore.open(tmp_path)


def test_bad_header_on_a_segment_that_is_not_the_last(tmp_path: Path) -> None:
    make_store(tmp_path, 3, segment_bytes=40)
    flip(seg(tmp_path, 1), 2)
    with pytest.raises(
        StorageCorrupt, match=re.escape("blocks-000001.seg offset 0: bad segment header")
    ):
        BlockStore.open(tmp_path, segment_bytes=40)


def test_bad_header_on_the_last_segment_with_records_after_it(tmp_path: Path) -> None:
    make_store(tmp_path, 3, segment_bytes=40)
    flip(seg(tmp_path, 2), 0)
    with pytest.raises(StorageCorrupt, match="bad segment header") as excinfo:
        BlockStore.open(tmp_path, segment_bytes=40)
    assert excinfo.value.height == 2


def test_missing_segment_refuses_to_open(tmp_path: Path) -> None:
    make_store(tmp_path, 4, segment_bytes=40)
    seg(tmp_path, 1).unlink()
    with pytest.raises(
        StorageCorrupt, match=re.escape("blocks-000001.seg offset 0: segment file missing")
    ):
        BlockStore.open(tmp_path, segment_bytes=40)


def test_lost_last_segment_detected_by_min_height(tmp_path: Path) -> None:
    make_store(tmp_path, 4, segment_bytes=40)
    seg(tmp_path, 3).unlink()
    with pytest.raises(StorageCorrupt, match="acknowledged block 3"):
        BlockStore.open(tmp_path, segment_bytes=40, min_height=3)


def test_damage_after_open_detected_by_get(tmp_path: Path) -> None:
    make_store(tmp_path, 3)
    with BlockStore.open(tmp_path) as store:
        flip(seg(tmp_path), len(seg(tmp_path).read_bytes()) - 1)
        with pytest.raises(StorageCorrupt, match="checksum mismatch") as excinfo:
            store.get(2)
        assert excinfo.value.height == 2


def test_scan_integrity_reports_without_writing(tmp_path: Path) -> None:
    payloads = make_store(tmp_path, 6, segment_bytes=40)  # one block per segment
    assert scan_integrity(tmp_path) == []
    flip(seg(tmp_path, 1), len(HEADER) + 5)
    with seg(tmp_path, 5).open("ab") as f:
        f.write(b"\0\0\0")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    problems = scan_integrity(tmp_path)
    assert [(p.height, p.segment, p.offset, p.torn_tail) for p in problems] == [
        (1, "blocks-000001.seg", len(HEADER), False),
        (6, "blocks-000005.seg", len(HEADER) + len(frame(5, payloads[5])), True),
    ]
    assert str(problems[0]) == "height 1: blocks-000001.seg offset 16: checksum mismatch"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(NotFound):
        scan_integrity(tmp_path / "absent")


# --- concurrency, speed, properties, crashes -----------------------------------------------------


def test_readers_read_while_a_writer_appends(tmp_path: Path) -> None:
    count = 300
    errors: list[BaseException] = []
    with BlockStore.open(tmp_path, segment_bytes=8192) as store:

        def read() -> None:
            rng = random.Random(threading.get_ident())
            try:
                while store.height < count - 1:
                    top = store.height
                    if top >= 0:
                        h = rng.randint(0, top)
                        assert store.get(h) == block(h, h % 200)
                        assert sum(1 for _ in store.iter_blocks(max(0, top - 5))) >= 1
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for t in readers:
            t.start()
        for h in range(count):
            store.append(h, block(h, h % 200))
        for t in readers:
            t.join(timeout=30)
    assert not errors, errors
    assert len(list(tmp_path.glob("*.seg"))) > 3


def test_open_scans_100k_records_quickly(tmp_path: Path) -> None:
    count = 100_000
    with BlockStore.open(tmp_path, fsync=False) as store:
        for first in range(0, count, 10_000):
            store.append_many((h, block(h, 100)) for h in range(first, first + 10_000))
    started = time.perf_counter()
    with BlockStore.open(tmp_path) as store:
        elapsed = time.perf_counter() - started
        assert store.height == count - 1
        assert store.get(54_321) == block(54_321, 100)
    assert elapsed < 2.0, f"open took {elapsed:.2f} s"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payloads=st.lists(st.binary(max_size=3000), max_size=40),
    segment_bytes=st.integers(len(HEADER) + 20, 6000),
    batch=st.integers(1, 7),
)
def test_random_payload_sizes_round_trip(
    payloads: list[bytes], segment_bytes: int, batch: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        with BlockStore.open(directory, segment_bytes=segment_bytes, fsync=False) as store:
            for first in range(0, len(payloads), batch):
                chunk = payloads[first : first + batch]
                if len(chunk) == 1:
                    store.append(first, chunk[0])
                else:
                    store.append_many(enumerate(chunk, start=first))
            assert [store.get(h) for h in range(len(payloads))] == payloads
        with BlockStore.open(directory, segment_bytes=segment_bytes, fsync=False) as store:
            assert store.recovered_tail == 0
            assert list(store.iter_blocks()) == list(enumerate(payloads))
        assert scan_integrity(directory) == []
        segments = [p.read_bytes() for p in sorted(Path(directory).glob("*.seg"))]
        assert all(data.startswith(HEADER) for data in segments)
        frames = b"".join(frame(h, p) for h, p in enumerate(payloads))
        assert b"".join(data[len(HEADER) :] for data in segments) == frames


_KILL_CHILD = textwrap.dedent(
    """
    import json, sys
    from carechain.ledger.blockstore import BlockStore

    with BlockStore.open(sys.argv[1], segment_bytes=1 << 20) as store:
        height = store.height + 1
        while True:
            n = height * 7919 % 150_000
            store.append(height, json.dumps({"height": height, "n": n, "pad": "x" * n}).encode())
            print(height, flush=True)
            height += 1
    """
)


@pytest.mark.integration
def test_acknowledged_blocks_survive_kill_9(tmp_path: Path) -> None:
    src = Path(blockstore.__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    rng = random.Random(20240601)
    acknowledged = -1
    for _ in range(10):
        child = subprocess.Popen(
            [sys.executable, "-c", _KILL_CHILD, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        time.sleep(rng.uniform(0.15, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        out, err = child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL, err.decode()
        lines = out.decode().split("\n")[:-1]  # a line cut by the kill has no newline
        acknowledged = max([acknowledged, *map(int, lines)])
        with BlockStore.open(tmp_path, segment_bytes=1 << 20, min_height=acknowledged) as store:
            assert store.height >= acknowledged
            for height, payload in store.iter_blocks():
                record = json.loads(payload)
                assert record["height"] == height
                assert len(record["pad"]) == record["n"]
    assert acknowledged > 10, "the child should have acknowledged some blocks"
    assert scan_integrity(tmp_path) == []
