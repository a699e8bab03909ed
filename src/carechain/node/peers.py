"""Peers checking peers: blocks for catch-up, signed checkpoints, fork evidence.

Catch-up (``PeerLink``): a peer further behind than the ordering service
keeps blocks fetches them from the other peers' REST APIs (``GET
/v1/blocks/{height}/raw``, a request signed with its own peer key). A fetched
block is only a carrier for the orderer-signed batch inside it: the node
re-checks the orderer's signature and every transaction and executes the batch
itself; if its own block then differs from the one served, the serving peer
lied (or is corrupt) and that is reported like a fork.

Cross-check (``CrossCheck``): after its blocks, each peer signs a checkpoint,
(chain, height, block hash, state digest, tree size and root), and publishes
it through the ordering service; each peer compares the others' checkpoints
with its own at the same height. Two honest peers fed the same batches reach
byte-identical blocks, so two valid signatures over different block hashes at
one height are evidence that one of them forked, kept as
``{"height", "ours", "theirs", ...}`` with both signed statements, logged at
ERROR, appended to ``forks.jsonl`` in the data directory, and shown by
``GET /v1/forks``, ``GET /v1/status`` and ``carechain network status``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from carechain.crypto.canonical import canonical_bytes, parse_json
from carechain.crypto.suite import CryptoSuite
from carechain.errors import CarechainError, InvalidInput
from carechain.identity.requests import sign_request
from carechain.ledger.block import Block, decode_block

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """A peer's signed statement of its chain after one block."""

    chain: str
    height: int
    block_hash: str
    state: str
    tree_size: int
    tree_root: str
    peer: str
    """The signing peer's certificate fingerprint."""
    signature: bytes = b""

    def _fields(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "height": self.height,
            "block": self.block_hash,
            "state": self.state,
            "tree_size": self.tree_size,
            "tree_root": self.tree_root,
            "peer": self.peer,
        }

    def statement(self) -> bytes:
        return canonical_bytes({"type": "carechain/checkpoint", **self._fields()})

    def signed(self, suite: CryptoSuite, key: bytes) -> Checkpoint:
        return Checkpoint(**{**self.__dict__, "signature": suite.sign(key, self.statement())})

    def to_json(self) -> dict[str, Any]:
        return {**self._fields(), "signature": base64.b64encode(self.signature).decode("ascii")}

    @classmethod
    def from_json(cls, doc: Any) -> Checkpoint:
        if not isinstance(doc, dict):
            raise InvalidInput("a checkpoint must be a JSON object")
        try:
            return cls(
                chain=str(doc["chain"]),
                height=int(doc["height"]),
                block_hash=str(doc["block"]),
                state=str(doc["state"]),
                tree_size=int(doc["tree_size"]),
                tree_root=str(doc["tree_root"]),
                peer=str(doc["peer"]),
                signature=base64.b64decode(str(doc["signature"]), validate=True),
            )
        except (KeyError, ValueError, TypeError, binascii.Error) as exc:
            raise InvalidInput(f"checkpoint does not decode: {exc}") from exc


def verify_fork_evidence(
    evidence: dict[str, Any], suite: CryptoSuite, public_keys: dict[str, bytes]
) -> bool:
    """Offline check of fork evidence (``how`` = ``checkpoint``): two valid signatures
    by two peers at the height the evidence names, over different chains.

    ``public_keys`` maps peer certificate fingerprints to their public keys.
    """
    if evidence.get("how") != "checkpoint":
        return False
    ours = Checkpoint.from_json(evidence["ours"])
    theirs = Checkpoint.from_json(evidence["theirs"])
    if ours.chain != theirs.chain or ours.peer == theirs.peer:
        return False
    if not ours.height == theirs.height == evidence.get("height"):
        return False
    if evidence.get("peer") != theirs.peer:
        return False
    if (ours.block_hash, ours.state, ours.tree_root) == (
        theirs.block_hash,
        theirs.state,
        theirs.tree_root,
    ):
        return False
    for checkpoint in (ours, theirs):
        key = public_keys.get(checkpoint.peer)
        if key is None or not suite.verify(key, checkpoint.statement(), checkpoint.signature):
            return False
    return True


@runtime_checkable
class CheckpointBoard(Protocol):
    """Where peers post their checkpoints for each other (the etcd ordering service)."""

    def publish_checkpoint(self, value: bytes) -> None: ...

    def checkpoints(self) -> dict[str, bytes]: ...


PublicKeyOf = Callable[[str], bytes | None]
"""A peer certificate fingerprint -> its public key, if it is a valid peer of the chain."""


class CrossCheck:
    """Publishes this peer's checkpoints and compares everyone else's with its own."""

    def __init__(
        self,
        chain: str,
        suite: CryptoSuite,
        peer_fp: str,
        peer_key: bytes,
        board: CheckpointBoard,
        public_key_of: PublicKeyOf,
        own_at: Callable[[int], Checkpoint | None],
        evidence_path: Path,
        *,
        interval_s: float = 0.5,
        keep_heights: int = 1000,
        on_fork: Callable[[int], None] | None = None,
    ) -> None:
        self.chain = chain
        self.suite = suite
        self.peer_fp = peer_fp
        self._key = peer_key
        self.board = board
        self.public_key_of = public_key_of
        self.own_at = own_at
        self.evidence_path = evidence_path
        self.interval_s = interval_s
        self.keep_heights = keep_heights
        self.on_fork = on_fork
        """Called (on the cross-check thread) with the height of each new fork."""
        self._latest: Checkpoint | None = None
        self._published: int = -1
        self._theirs: dict[str, OrderedDict[int, Checkpoint]] = {}
        self.forks: list[dict[str, Any]] = self._load_evidence()
        self._reported: set[tuple[str, int]] = {_evidence_key(f) for f in self.forks}
        self.forked_peers: set[str] = {
            str(f["peer"]) for f in self.forks if f.get("how") == "checkpoint"
        }
        """Peers whose chains differ from ours from some height on (recorded once)."""
        self.peers_seen: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _load_evidence(self) -> list[dict[str, Any]]:
        if not self.evidence_path.exists():
            return []
        forks = []
        for line in self.evidence_path.read_bytes().splitlines():
            try:
                forks.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                log.warning("unreadable line in %s skipped", self.evidence_path)
        return forks

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cross-check", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def committed(self, checkpoint: Checkpoint) -> None:
        """Note this peer's newest block (signed when it is published)."""
        self._latest = checkpoint

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.round()
            except CarechainError as exc:
                log.warning("cross-check round failed: %s", exc)
            except Exception:
                log.exception("cross-check round failed")

    def round(self) -> None:
        """Publish our newest checkpoint, read the others', compare what we can."""
        latest = self._latest
        if latest is not None and latest.height > self._published:
            signed = latest.signed(self.suite, self._key)
            self.board.publish_checkpoint(canonical_bytes(signed.to_json()))
            self._published = latest.height
        for value in self.board.checkpoints().values():
            self._consider(value)
        self._compare()

    def _consider(self, value: bytes) -> None:
        try:
            theirs = Checkpoint.from_json(parse_json(value))
        except CarechainError as exc:
            log.warning("a checkpoint on the board does not decode: %s", exc)
            return
        if theirs.peer == self.peer_fp or theirs.chain != self.chain:
            return
        key = self.public_key_of(theirs.peer)
        if key is None:
            log.warning("checkpoint signed by %s..., who is not a peer", theirs.peer[:12])
            return
        if not self.suite.verify(key, theirs.statement(), theirs.signature):
            log.warning("checkpoint of peer %s... has a bad signature", theirs.peer[:12])
            return
        history = self._theirs.setdefault(theirs.peer, OrderedDict())
        history[theirs.height] = theirs
        while len(history) > self.keep_heights:
            history.popitem(last=False)
        self.peers_seen[theirs.peer] = {"height": theirs.height, "seen_at": time.time()}

    def _compare(self) -> None:
        for peer, history in self._theirs.items():
            compared = []
            for height, theirs in history.items():
                ours = self.own_at(height)
                if ours is None:
                    continue  # we have not reached that height yet
                compared.append(height)
                if peer in self.forked_peers:
                    continue  # once forked, every later height differs too: one record is enough
                if (ours.block_hash, ours.state, ours.tree_root) != (
                    theirs.block_hash,
                    theirs.state,
                    theirs.tree_root,
                ):
                    self.report(ours.signed(self.suite, self._key), theirs, "checkpoint")
            for height in compared:
                del history[height]
            self._theirs[peer] = history

    def report(self, ours: Checkpoint, theirs: Checkpoint, how: str) -> None:
        """Record fork evidence: both signed statements (once per peer and height)."""
        evidence = {
            "height": theirs.height,
            "peer": theirs.peer,
            "how": how,
            "detected_at": int(time.time() * 1000),
            "ours": ours.to_json(),
            "theirs": theirs.to_json(),
        }
        if not self._record(_evidence_key(evidence), evidence):
            return
        self.forked_peers.add(theirs.peer)
        if self.on_fork is not None:
            self.on_fork(theirs.height)
        log.error(
            "FORK at height %d: peer %s... signed block %s, we have %s (evidence in %s)",
            theirs.height,
            theirs.peer[:12],
            theirs.block_hash[:16],
            ours.block_hash[:16],
            self.evidence_path,
        )

    def report_served(self, ours: Checkpoint, url: str, theirs: Block) -> None:
        """Record that a peer served a block that executes to a different header."""
        evidence = _served_evidence(ours, url, theirs, self.suite)
        self._record(_evidence_key(evidence), evidence)

    def report_forged(self, url: str, block: Block, problem: str) -> None:
        """Record that a peer served a block whose batch no orderer signed."""
        evidence = {
            "height": block.height,
            "peer": url,
            "how": "forged_block",
            "problem": problem,
            "detected_at": int(time.time() * 1000),
            "theirs_block": block.to_json(),
        }
        if self._record(_evidence_key(evidence), evidence):
            log.error("peer %s served a forged block %d: %s", url, block.height, problem)

    def report_equivocation(self, url: str, ours: Block, theirs: Block) -> None:
        """Record two different batches for one height, each signed by an orderer."""

        def signed(block: Block) -> dict[str, Any]:
            h = block.header
            return {
                "chain": h.chain,
                "height": h.height,
                "time": h.time_ms,
                "tx_count": h.tx_count,
                "tx_root": h.tx_root,
                "orderer": h.orderer,
                "orderer_sig": base64.b64encode(h.orderer_sig).decode("ascii"),
            }

        same_orderer = ours.header.orderer == theirs.header.orderer
        evidence = {
            "height": ours.height,
            "peer": url,
            # One orderer signing two batches for a height is equivocation; two
            # orderers each signing one means the ordering service itself split.
            "how": "orderer_equivocation" if same_orderer else "conflicting_orderers",
            "detected_at": int(time.time() * 1000),
            "ours_batch": signed(ours),
            "theirs_batch": signed(theirs),
        }
        if self._record(_evidence_key(evidence), evidence):
            log.error(
                "TWO BATCHES at height %d, signed by %s... and %s...",
                ours.height,
                ours.header.orderer[:12],
                theirs.header.orderer[:12],
            )

    def _record(self, key: tuple[str, int], evidence: dict[str, Any]) -> bool:
        with self._lock:
            if key in self._reported:
                return False
            self._reported.add(key)
            self.forks.append(evidence)
            with self.evidence_path.open("ab") as out:
                out.write(orjson.dumps(evidence) + b"\n")
        return True


def _served_evidence(
    ours: Checkpoint, url: str, theirs: Block, suite: CryptoSuite
) -> dict[str, Any]:
    return {
        "height": theirs.height,
        "peer": url,
        "how": "served_block",
        "detected_at": int(time.time() * 1000),
        "ours": ours.to_json(),
        "theirs_header": theirs.header.to_json(),
        "theirs_block_hash": theirs.header.block_hash(suite),
    }


def _evidence_key(evidence: dict[str, Any]) -> tuple[str, int]:
    """What makes two records the same finding (so a restart does not repeat them)."""
    return (f"{evidence.get('how')}:{evidence.get('peer')}", int(evidence.get("height", -1)))


class PeerLink:
    """Signed requests to the other peers' REST APIs, for blocks this peer lacks."""

    def __init__(
        self,
        urls: Sequence[str],
        suite: CryptoSuite,
        peer_fp: str,
        peer_key: bytes,
        *,
        timeout_s: float = 10.0,
        max_block_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.max_block_bytes = max_block_bytes
        self.suite = suite
        self.peer_fp = peer_fp
        self._key = peer_key
        self.timeout_s = timeout_s
        self._next = 0

    def fetch_block(
        self, height: int, acceptable: Callable[[str, Block], bool] | None = None
    ) -> tuple[str, Block] | None:
        """The block at ``height`` from the first peer that has it (and whose block
        ``acceptable(url, block)`` accepts), or None."""

        for attempt in range(len(self.urls)):
            url = self.urls[(self._next + attempt) % len(self.urls)]
            block = self.fetch_block_from(url, height)
            if block is None or (acceptable is not None and not acceptable(url, block)):
                continue
            self._next = (self._next + attempt) % len(self.urls)
            return url, block
        return None

    def fetch_block_from(self, url: str, height: int) -> Block | None:
        """The block at ``height`` as the peer at ``url`` serves it, or None."""
        import httpx

        path = f"/v1/blocks/{height}/raw"
        headers = sign_request(self.suite, self._key, self.peer_fp, "GET", path, b"")
        # A whole-request deadline and a size cap: a peer that trickles bytes, or
        # sends a huge body, cannot hold this peer's catch-up or its memory.
        deadline = time.monotonic() + self.timeout_s
        body = bytearray()
        try:
            with httpx.stream(
                "GET", url + path, headers=headers, timeout=self.timeout_s
            ) as response:
                if response.status_code != 200:
                    log.info("peer %s has no block %d (HTTP %d)", url, height, response.status_code)
                    return None
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_block_bytes:
                        log.error("peer %s served an oversize block %d", url, height)
                        return None
                    if time.monotonic() > deadline:
                        log.error("peer %s too slow serving block %d", url, height)
                        return None
        except httpx.HTTPError as exc:
            log.info("peer %s unreachable for block %d: %s", url, height, exc)
            return None
        try:
            block = decode_block(bytes(body), height)
        except CarechainError as exc:
            log.error("peer %s served block %d that does not decode: %s", url, height, exc)
            return None
        if block.height != height:
            log.error("peer %s served block %d for %d", url, block.height, height)
            return None
        return block
