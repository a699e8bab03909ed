"""Transactions: signing, ids, envelopes and the checks ``decode_envelope`` makes.

* ``testdata/transaction_known_answer.json`` is one signed transaction computed
  without carechain (rfc8785, hashlib, cryptography's Ed25519).
* ``testdata/transaction_envelopes.json`` holds damaged copies of a good
  envelope, each with the exact error class and a fragment of its message.
* The rest checks the byte-level entry point (``decode_envelope_bytes``):
  size limit, canonical form, UTF-8, and a hypothesis round trip.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from carechain.crypto.canonical import MAX_SAFE_INTEGER, canonical_bytes
from carechain.crypto.suite import DEFAULT
from carechain.errors import InvalidInput, InvalidTransaction, NonCanonical, Oversize
from carechain.ledger.transaction import (
    MAX_ENVELOPE_BYTES,
    Fingerprint,
    SignedTransaction,
    Transaction,
    add_signature,
    compute_txid,
    decode_batch,
    decode_envelope,
    decode_envelope_bytes,
    new_nonce,
    sign_transaction,
)

TESTDATA = Path(__file__).parent / "testdata"
KNOWN_ANSWER = json.loads((TESTDATA / "transaction_known_answer.json").read_text("utf-8"))
ENVELOPES = json.loads((TESTDATA / "transaction_envelopes.json").read_text("utf-8"))
ERRORS: dict[str, type[InvalidInput]] = {
    "InvalidTransaction": InvalidTransaction,
    "NonCanonical": NonCanonical,
    "Oversize": Oversize,
}

SIGNER = Fingerprint(ENVELOPES["fingerprints"]["signer"])
COSIGNER = Fingerprint(ENVELOPES["fingerprints"]["cosigner"])
STRANGER = Fingerprint(ENVELOPES["fingerprints"]["stranger"])


def random_fingerprint() -> Fingerprint:
    return Fingerprint(DEFAULT.generate_private_key().hex())


def make_body(**changes: Any) -> Transaction:
    fields: dict[str, Any] = {
        "chain": "demo",
        "contract": "notary",
        "method": "anchor",
        "args": {"digest": "ab" * 32, "pages": 2},
        "signer": SIGNER,
        "nonce": "n-1",
        "timestamp_ms": 1_763_771_000_000,
        "cosigners": (COSIGNER,),
    }
    fields.update(changes)
    return Transaction(**fields)


@pytest.fixture
def seeds() -> dict[Fingerprint, bytes]:
    return {fp: DEFAULT.generate_private_key() for fp in (SIGNER, COSIGNER, STRANGER)}


def verifies(seed: bytes, message: bytes, signature: bytes) -> bool:
    return DEFAULT.verify(DEFAULT.public_key(seed), message, signature)


# -- known answer -------------------------------------------------------------


def known_answer_body() -> Transaction:
    body = KNOWN_ANSWER["envelope"]["body"]
    return Transaction(
        chain=body["chain"],
        contract=body["contract"],
        method=body["method"],
        args=body["args"],
        signer=Fingerprint(body["signer"]),
        nonce=body["nonce"],
        timestamp_ms=body["ts"],
        cosigners=tuple(Fingerprint(fp) for fp in body["cosigners"]),
    )


def test_known_answer_is_reproduced_by_signing() -> None:
    keys = {Fingerprint(fp): bytes.fromhex(key["seed"]) for fp, key in KNOWN_ANSWER["keys"].items()}
    tx = sign_transaction(known_answer_body(), keys)
    assert tx.body_bytes == KNOWN_ANSWER["body_bytes"].encode("utf-8")
    assert tx.txid == KNOWN_ANSWER["txid"]
    assert tx.to_json() == KNOWN_ANSWER["envelope"]
    assert tx.wire_bytes() == KNOWN_ANSWER["wire"].encode("utf-8")
    for key in KNOWN_ANSWER["keys"].values():
        assert DEFAULT.public_key(bytes.fromhex(key["seed"])).hex() == key["public_key"]


def test_known_answer_decodes_and_verifies() -> None:
    wire = KNOWN_ANSWER["wire"].encode("utf-8")
    tx = decode_envelope_bytes(wire, canonical=True)
    assert tx.body == known_answer_body()
    assert tx.txid == KNOWN_ANSWER["txid"]
    assert tx.wire_bytes() == wire
    assert tx.signers() == tuple(KNOWN_ANSWER["keys"])
    for fp, key in KNOWN_ANSWER["keys"].items():
        public = bytes.fromhex(key["public_key"])
        assert DEFAULT.verify(public, tx.body_bytes, tx.signatures[Fingerprint(fp)])
        # A second Ed25519 implementation agrees (raises if it does not verify).
        Ed25519PublicKey.from_public_bytes(public).verify(
            tx.signatures[Fingerprint(fp)], tx.body_bytes
        )


# -- signing and ids ----------------------------------------------------------


def test_txid_is_sha256_of_canonical_body(seeds: dict[Fingerprint, bytes]) -> None:
    body = make_body(args={"z": 1, "a": ["\u20ac", {"y": None, "b": True}], "\U0001f600": 0})
    tx = sign_transaction(body, {SIGNER: seeds[SIGNER]})
    assert tx.body_bytes == rfc8785.dumps(body.to_json())
    assert tx.body_bytes == body.body_bytes()
    assert tx.txid == hashlib.sha256(tx.body_bytes).hexdigest()
    assert tx.txid == compute_txid(tx.body_bytes)
    assert len(tx.txid) == 64 and tx.txid == tx.txid.lower()


def test_body_json_names_every_field() -> None:
    body = make_body()
    assert body.to_json() == {
        "v": 1,
        "chain": "demo",
        "contract": "notary",
        "method": "anchor",
        "args": {"digest": "ab" * 32, "pages": 2},
        "signer": SIGNER,
        "nonce": "n-1",
        "ts": 1_763_771_000_000,
        "cosigners": [COSIGNER],
    }


@pytest.mark.parametrize(
    "change",
    [
        {"chain": "other"},
        {"contract": "records"},
        {"method": "revoke"},
        {"args": {"digest": "ab" * 32, "pages": 3}},
        {"nonce": "n-2"},
        {"timestamp_ms": 1_763_771_000_001},
        {"cosigners": ()},
    ],
)
def test_txid_changes_with_every_field(change: dict[str, Any]) -> None:
    assert make_body(**change).body_bytes() != make_body().body_bytes()
    assert compute_txid(make_body(**change).body_bytes()) != compute_txid(make_body().body_bytes())


def test_signatures_verify_over_body_bytes(seeds: dict[Fingerprint, bytes]) -> None:
    tx = sign_transaction(make_body(), {SIGNER: seeds[SIGNER], COSIGNER: seeds[COSIGNER]})
    assert set(tx.signatures) == {SIGNER, COSIGNER}
    for fp, signature in tx.signatures.items():
        assert len(signature) == DEFAULT.signature_size
        assert signature == DEFAULT.sign(seeds[fp], tx.body_bytes)
        assert verifies(seeds[fp], tx.body_bytes, signature)
        assert not verifies(seeds[STRANGER], tx.body_bytes, signature)
        assert not verifies(seeds[fp], make_body(nonce="n-2").body_bytes(), signature)
        assert not verifies(seeds[fp], tx.body_bytes + b" ", signature)


def test_add_signature_adds_a_cosigner_without_touching_the_original(
    seeds: dict[Fingerprint, bytes],
) -> None:
    tx = sign_transaction(make_body(), {SIGNER: seeds[SIGNER]})
    cosigned = add_signature(tx, COSIGNER, seeds[COSIGNER])
    assert set(tx.signatures) == {SIGNER}
    assert set(cosigned.signatures) == {SIGNER, COSIGNER}
    assert cosigned.body == tx.body
    assert cosigned.body_bytes == tx.body_bytes
    assert cosigned.txid == tx.txid
    assert cosigned.signatures[SIGNER] == tx.signatures[SIGNER]
    assert verifies(seeds[COSIGNER], tx.body_bytes, cosigned.signatures[COSIGNER])
    assert cosigned.wire_bytes() != tx.wire_bytes()


def test_add_signature_replaces_a_signature_by_the_same_key(
    seeds: dict[Fingerprint, bytes],
) -> None:
    tx = sign_transaction(make_body(), {SIGNER: seeds[STRANGER]})
    fixed = add_signature(tx, SIGNER, seeds[SIGNER])
    assert set(fixed.signatures) == {SIGNER}
    assert verifies(seeds[SIGNER], fixed.body_bytes, fixed.signatures[SIGNER])


def test_signers_lists_signer_then_cosigners_in_body_order() -> None:
    a, b = random_fingerprint(), random_fingerprint()
    tx = sign_transaction(make_body(cosigners=(b, a)), {})
    assert tx.signers() == (SIGNER, b, a)


def test_wire_bytes_are_canonical_and_base64(seeds: dict[Fingerprint, bytes]) -> None:
    tx = sign_transaction(make_body(), {COSIGNER: seeds[COSIGNER], SIGNER: seeds[SIGNER]})
    envelope = tx.to_json()
    assert list(envelope["signatures"]) == sorted(envelope["signatures"])
    for fp, text in envelope["signatures"].items():
        assert base64.b64decode(text, validate=True) == tx.signatures[fp]
    assert tx.wire_bytes() == rfc8785.dumps(envelope)
    assert tx.wire_bytes() is tx.wire_bytes()


def test_float_in_args_cannot_be_signed() -> None:
    with pytest.raises(NonCanonical, match=r"\.args\.amount: floating-point"):
        sign_transaction(make_body(args={"amount": 9.99}), {})


# -- round trips --------------------------------------------------------------


def test_wire_round_trip(seeds: dict[Fingerprint, bytes]) -> None:
    tx = sign_transaction(make_body(), {SIGNER: seeds[SIGNER], COSIGNER: seeds[COSIGNER]})
    for canonical in (True, False):
        back = decode_envelope_bytes(tx.wire_bytes(), canonical=canonical)
        assert back == tx
        assert back.txid == tx.txid
        assert back.body_bytes == tx.body_bytes
        assert back.wire_bytes() == tx.wire_bytes()
        assert back.wire_bytes() == canonical_bytes(back.to_json())
        for fp, signature in back.signatures.items():
            assert verifies(seeds[fp], back.body_bytes, signature)


def test_decode_envelope_of_to_json_round_trips(seeds: dict[Fingerprint, bytes]) -> None:
    tx = sign_transaction(make_body(), {SIGNER: seeds[SIGNER], COSIGNER: seeds[COSIGNER]})
    assert decode_envelope(tx.to_json()) == tx


def test_non_canonical_bytes_decode_to_the_canonical_transaction(
    seeds: dict[Fingerprint, bytes],
) -> None:
    tx = sign_transaction(make_body(), {SIGNER: seeds[SIGNER], COSIGNER: seeds[COSIGNER]})
    loose = json.dumps(tx.to_json(), indent=2, ensure_ascii=True).encode()
    back = decode_envelope_bytes(loose)
    assert back == tx
    assert back.txid == tx.txid
    assert back.wire_bytes() == tx.wire_bytes()


profile_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=120, deadline=None)
@given(
    args=st.dictionaries(st.text(max_size=8), profile_values, max_size=5),
    nonce=st.from_regex(r"[A-Za-z0-9_.:-]{1,128}", fullmatch=True),
    timestamp=st.integers(0, MAX_SAFE_INTEGER),
    n_cosigners=st.integers(0, 3),
)
def test_any_valid_transaction_round_trips(
    args: dict[str, Any], nonce: str, timestamp: int, n_cosigners: int
) -> None:
    keys = {random_fingerprint(): DEFAULT.generate_private_key() for _ in range(n_cosigners + 1)}
    signer, *cosigners = keys
    body = make_body(
        args=args, nonce=nonce, timestamp_ms=timestamp, signer=signer, cosigners=tuple(cosigners)
    )
    tx = sign_transaction(body, keys)
    assert tx.txid == hashlib.sha256(rfc8785.dumps(body.to_json())).hexdigest()
    back = decode_envelope_bytes(tx.wire_bytes(), canonical=True)
    assert back == tx
    assert back.txid == tx.txid
    for fp, signature in back.signatures.items():
        assert verifies(keys[fp], back.body_bytes, signature)


# -- damaged envelopes (data) -------------------------------------------------


def apply(envelope: Any, mutation: dict[str, Any]) -> Any:
    path = mutation["path"]
    if not path:
        assert mutation["op"] == "set"
        return copy.deepcopy(mutation["value"])
    parent = envelope
    for key in path[:-1]:
        parent = parent[key]
    if mutation["op"] == "set":
        parent[path[-1]] = copy.deepcopy(mutation["value"])
    else:
        assert mutation["op"] == "delete", mutation
        del parent[path[-1]]
    return envelope


def envelope_cases() -> list[Any]:
    params = []
    for case in ENVELOPES["cases"]:
        marks = []
        if "xfail" in case:
            marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


@pytest.fixture
def good_envelope(seeds: dict[Fingerprint, bytes]) -> dict[str, Any]:
    base = copy.deepcopy(ENVELOPES["base"])
    body = Transaction(
        chain=base["chain"],
        contract=base["contract"],
        method=base["method"],
        args=base["args"],
        signer=Fingerprint(base["signer"]),
        nonce=base["nonce"],
        timestamp_ms=base["ts"],
        cosigners=tuple(Fingerprint(fp) for fp in base["cosigners"]),
    )
    assert body.to_json() == base
    tx = sign_transaction(body, {SIGNER: seeds[SIGNER], COSIGNER: seeds[COSIGNER]})
    # to_json() already copies args; the deep copy keeps the cases independent regardless.
    envelope: dict[str, Any] = copy.deepcopy(tx.to_json())
    return envelope


@pytest.mark.parametrize("case", envelope_cases())
def test_envelope_case(case: dict[str, Any], good_envelope: dict[str, Any]) -> None:
    envelope: Any = good_envelope
    for mutation in case["mutate"]:
        envelope = apply(envelope, mutation)
    if case["expect"] == "ok":
        tx = decode_envelope(envelope)
        assert tx.body.to_json() == envelope["body"]
        assert tx.txid == hashlib.sha256(rfc8785.dumps(envelope["body"])).hexdigest()
        return
    with pytest.raises(InvalidInput) as caught:
        decode_envelope(envelope)
    assert type(caught.value) is ERRORS[case["expect"]], caught.value
    assert case["message"] in caught.value.message


def test_envelope_cases_cover_every_body_field() -> None:
    missing = {case["id"] for case in ENVELOPES["cases"] if case["id"].endswith("-missing")}
    for field in ENVELOPES["base"]:
        assert f"body-{field}-missing" in missing


def test_decode_envelope_chains_the_canonical_error(good_envelope: dict[str, Any]) -> None:
    good_envelope["body"]["args"]["amount"] = 1.5
    with pytest.raises(InvalidTransaction) as caught:
        decode_envelope(good_envelope)
    assert isinstance(caught.value.__cause__, NonCanonical)


# -- bytes: size, form, encoding ----------------------------------------------


def padded_wire(seeds: dict[Fingerprint, bytes], size: int) -> bytes:
    """A valid canonical envelope of exactly ``size`` bytes (padding in args)."""
    keys = {SIGNER: seeds[SIGNER], COSIGNER: seeds[COSIGNER]}
    empty = sign_transaction(make_body(args={"pad": ""}), keys).wire_bytes()
    wire = sign_transaction(make_body(args={"pad": "x" * (size - len(empty))}), keys).wire_bytes()
    assert len(wire) == size
    return wire


def test_envelope_of_exactly_the_limit_is_accepted(seeds: dict[Fingerprint, bytes]) -> None:
    wire = padded_wire(seeds, MAX_ENVELOPE_BYTES)
    tx = decode_envelope_bytes(wire, canonical=True)
    assert len(tx.body.args["pad"]) > 250_000


def test_envelope_over_the_limit_is_oversize(seeds: dict[Fingerprint, bytes]) -> None:
    wire = padded_wire(seeds, MAX_ENVELOPE_BYTES + 1)
    for canonical in (True, False):
        with pytest.raises(Oversize) as caught:
            decode_envelope_bytes(wire, canonical=canonical)
        assert caught.value.message == (
            f"transaction is {MAX_ENVELOPE_BYTES + 1} bytes; the limit is {MAX_ENVELOPE_BYTES}"
        )
        assert isinstance(caught.value, InvalidTransaction)


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(Oversize, match="the limit is"):
        decode_envelope_bytes(b"\xff" * (MAX_ENVELOPE_BYTES + 1))


@pytest.fixture
def wire(seeds: dict[Fingerprint, bytes]) -> bytes:
    keys = {SIGNER: seeds[SIGNER], COSIGNER: seeds[COSIGNER]}
    return sign_transaction(make_body(), keys).wire_bytes()


def signatures_first(wire: bytes) -> bytes:
    """The envelope with its two members in the wrong order, otherwise canonical."""
    envelope = json.loads(wire)
    text = json.dumps(
        {"signatures": envelope["signatures"], "body": envelope["body"]},
        separators=(",", ":"),
        ensure_ascii=False,
        sort_keys=False,
    )
    return text.encode("utf-8")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda w: w + b"\n", id="trailing-newline"),
        pytest.param(lambda w: b" " + w, id="leading-space"),
        pytest.param(lambda w: w.replace(b'"chain":', b'"chain": '), id="space-after-colon"),
        pytest.param(lambda w: w.replace(b'"demo"', b'"\\u0064emo"'), id="escaped-letter"),
        pytest.param(signatures_first, id="unsorted-top-level"),
        pytest.param(
            lambda w: json.dumps(json.loads(w), sort_keys=False).encode(), id="json-dumps-default"
        ),
    ],
)
def test_canonical_mode_refuses_non_canonical_bytes(wire: bytes, damage: Any) -> None:
    damaged = damage(wire)
    with pytest.raises(NonCanonical):
        decode_envelope_bytes(damaged, canonical=True)


def test_canonical_mode_refuses_whitespace_that_plain_mode_accepts(wire: bytes) -> None:
    loose = wire.replace(b'"chain":', b'"chain": ')
    with pytest.raises(NonCanonical, match="not in RFC 8785 canonical form"):
        decode_envelope_bytes(loose, canonical=True)
    assert decode_envelope_bytes(loose).wire_bytes() == wire


@pytest.mark.parametrize("canonical", [True, False])
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda w: w + b"x", "malformed JSON: Extra data"),
        (lambda w: w[:-1], "malformed JSON"),
        (lambda w: w.replace(b'"demo"', b'"d\xffmo"'), "not UTF-8 at byte"),
        (lambda w: w.replace(b'"pages":2', b'"pages":2.0'), "floating-point number 2.0"),
        (lambda w: w.replace(b'"pages":2', b'"pages":NaN'), "NaN is not a JSON value"),
        (
            lambda w: w.replace(b'"nonce":"n-1"', b'"nonce":"n-1","nonce":"n-2"'),
            "duplicate object key 'nonce'",
        ),
    ],
    ids=["trailing-garbage", "truncated", "invalid-utf8", "float", "nan", "duplicate-key"],
)
def test_unparseable_bytes_are_noncanonical(
    wire: bytes, damage: Any, message: str, canonical: bool
) -> None:
    with pytest.raises(NonCanonical) as caught:
        decode_envelope_bytes(damage(wire), canonical=canonical)
    assert message in caught.value.message


def test_bytes_with_a_bad_field_name_the_field(wire: bytes) -> None:
    damaged = wire.replace(b'"ts":1763771000000', b'"ts":-5')
    for canonical in (True, False):
        with pytest.raises(InvalidTransaction, match=r"body\.ts must be milliseconds"):
            decode_envelope_bytes(damaged, canonical=canonical)


def test_lone_surrogate_escape_in_args_is_invalid(wire: bytes) -> None:
    damaged = wire.replace(b'"pages":2', b'"pages":"\\ud800"')
    with pytest.raises(InvalidTransaction, match=r"body\.args: string holds a lone surrogate"):
        decode_envelope_bytes(damaged)


def test_lone_surrogate_key_beside_high_key_in_args_is_invalid(wire: bytes) -> None:
    # Regression: canonical_bytes used to leak UnicodeEncodeError from its UTF-16 key sort.
    damaged = wire.replace(b'"pages":2', b'"pages":{"\\ud800":1,"\\ue000":2}')
    with pytest.raises(InvalidTransaction, match="lone surrogate"):
        decode_envelope_bytes(damaged)


def test_integer_literal_too_long_to_parse_is_noncanonical(wire: bytes) -> None:
    # Regression: json.loads raises ValueError past Python's 4300-digit limit.
    damaged = wire.replace(b'"pages":2', b'"pages":' + b"9" * 5000)
    for canonical in (True, False):
        with pytest.raises(NonCanonical, match="malformed JSON"):
            decode_envelope_bytes(damaged, canonical=canonical)


def recode_signature(text: str) -> str:
    """Flip an unused low bit in the last base64 character; the bytes decode unchanged."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    assert text.endswith("==")  # 64 bytes: the last character carries 2 bits and 4 zero bits
    last = text[-3]
    other = alphabet[alphabet.index(last) ^ 1]
    recoded = text[:-3] + other + "=="
    assert base64.b64decode(recoded) == base64.b64decode(text)
    return recoded


def test_non_canonical_base64_is_refused(wire: bytes) -> None:
    # Regression: base64 with non-zero unused bits decoded to the same signature, so
    # canonical=True kept a second wire form of one transaction (same txid).
    envelope = json.loads(wire)
    text = envelope["signatures"][SIGNER]
    damaged = wire.replace(text.encode(), recode_signature(text).encode())
    assert damaged != wire
    for canonical in (True, False):
        with pytest.raises(InvalidTransaction, match="is not canonical base64"):
            decode_envelope_bytes(damaged, canonical=canonical)


def test_to_json_cannot_change_a_signed_transaction(seeds: dict[Fingerprint, bytes]) -> None:
    # Regression: to_json() handed out the body's own args dict and wire_bytes() is lazy.
    tx = sign_transaction(make_body(), {SIGNER: seeds[SIGNER], COSIGNER: seeds[COSIGNER]})
    tx.to_json()["body"]["args"]["pages"] = 3
    assert tx.body.args["pages"] == 2
    assert json.loads(tx.wire_bytes())["body"] == json.loads(tx.body_bytes)


def test_changing_the_input_after_decoding_cannot_change_the_signed_bytes(wire: bytes) -> None:
    # Regression: wire_bytes() was computed lazily from to_json(); it is now spliced from
    # body_bytes, so it keeps matching the txid whatever happens to the caller's value.
    value = json.loads(wire)
    tx = decode_envelope(value)
    value["body"]["args"]["pages"] = 3
    assert tx.wire_bytes() == wire
    assert tx.body_bytes == canonical_bytes(json.loads(wire)["body"])
    assert tx.txid == compute_txid(tx.body_bytes)


# Regression: decode_envelope used to keep the caller's args dict.
def test_decoded_transaction_does_not_share_the_input(wire: bytes) -> None:
    value = json.loads(wire)
    tx = decode_envelope(value)
    value["body"]["args"]["pages"] = 3
    assert tx.body.args["pages"] == 2
    assert tx.to_json() == json.loads(wire)


def test_decoded_transaction_is_a_signed_transaction(wire: bytes) -> None:
    tx = decode_envelope_bytes(wire, canonical=True)
    assert isinstance(tx, SignedTransaction)
    assert tx.body.signer == SIGNER
    assert tx.body.cosigners == (COSIGNER,)


def test_partial_decoding_waits_for_co_signers_but_never_for_the_signer(
    seeds: dict[Fingerprint, bytes],
) -> None:
    """A transaction passed round its co-signers (``carechain tx cosign``)."""
    body = make_body(signer=SIGNER, cosigners=(COSIGNER,))
    only_signer = sign_transaction(body, {SIGNER: seeds[SIGNER]}).wire_bytes()
    with pytest.raises(InvalidTransaction, match="missing signature"):
        decode_envelope_bytes(only_signer, canonical=True)
    partial = decode_envelope_bytes(only_signer, canonical=True, partial=True)
    complete = add_signature(partial, COSIGNER, seeds[COSIGNER])
    assert decode_envelope_bytes(complete.wire_bytes(), canonical=True).txid == partial.txid
    only_cosigner = sign_transaction(body, {COSIGNER: seeds[COSIGNER]}).wire_bytes()
    with pytest.raises(InvalidTransaction, match="missing signature"):
        decode_envelope_bytes(only_cosigner, canonical=True, partial=True)


# -- batches ------------------------------------------------------------------


def test_a_batch_decodes_each_envelope_or_names_what_is_wrong_with_it(
    seeds: dict[Fingerprint, bytes],
) -> None:
    good = [
        sign_transaction(make_body(nonce=f"n-{i}", cosigners=()), {SIGNER: seeds[SIGNER]})
        for i in range(3)
    ]
    wires = [tx.wire_bytes() for tx in good]
    bad_type = wires[1].replace(b'"ts":1763771000000', b'"ts":"soon"')
    extra = wires[2].replace(b'{"body":', b'{"note":"hi","body":')
    body = b'{"transactions":[' + b",".join([wires[0], bad_type, extra, b"7"]) + b"]}"
    first, *errors = decode_batch(body, max_batch=10, suite="intl")
    assert isinstance(first, SignedTransaction) and first.txid == good[0].txid
    assert first.wire_bytes() == wires[0]
    assert [type(e) for e in errors] == [InvalidTransaction, InvalidTransaction, InvalidTransaction]
    messages = [e.message for e in errors]  # type: ignore[union-attr]
    assert "body.ts must be int" in messages[0]
    assert "unknown fields: note" in messages[1]
    assert "JSON object" in messages[2]


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        (b'{"transactions": [', NonCanonical, "malformed JSON"),
        (b'{"transactions": [], "transactions": []}', NonCanonical, "duplicate object key"),
        (b'{"transactions": [{"body": {"v": 1.0}}]}', NonCanonical, "floating-point"),
        (b"[]", InvalidInput, '{"transactions": [...]}'),
        (b'{"transactions": {}}', InvalidInput, '{"transactions": [...]}'),
        (b'{"transactions": [], "wait": true}', InvalidInput, "unknown fields: wait"),
        (b'{"transactions": [' + b",".join([b"{}"] * 11) + b"]}", Oversize, "limit is 10"),
    ],
)
def test_a_batch_that_is_unusable_as_a_whole_is_refused(
    body: bytes, error: type[InvalidInput], words: str
) -> None:
    with pytest.raises(error) as err:
        decode_batch(body, max_batch=10)
    assert type(err.value) is error and words in err.value.message


# -- nonces -------------------------------------------------------------------


def test_new_nonces_grow_and_are_nonces_a_body_accepts(seeds: dict[Fingerprint, bytes]) -> None:
    """Each nonce sorts after the one before (so the node's nonce index appends), keeps
    its prefix, and signs and decodes as a body's nonce."""
    made = [new_nonce("access-") for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(n.startswith("access-") and len(n) == len("access-") + 24 for n in made)
    tx = sign_transaction(make_body(nonce=new_nonce(), cosigners=()), {SIGNER: seeds[SIGNER]})
    assert decode_envelope_bytes(tx.wire_bytes()).body.nonce == tx.body.nonce
