"""Published and damaged canonical-JSON vectors, loaded from ``testdata/*.json``.

Each file has a description and a list of cases; each case has an id, a
description, a ``source`` (RFC section, or repository, path and commit), an
input (``input`` text or ``input_hex`` bytes) and either the answer
(``expected`` text, ``expected_hex`` bytes, or ``"ok"``) or ``error``, a
fragment of the ``NonCanonical`` message. A file's ``function`` says what is
run on the input: ``canonicalize`` (``parse_json`` then ``canonical_bytes``,
the default) or ``parse_canonical``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from carechain.crypto.canonical import canonical_bytes, parse_canonical, parse_json
from carechain.errors import NonCanonical

TESTDATA = Path(__file__).parent / "testdata"

Case = dict[str, Any]


def load_cases() -> list[Any]:
    params = []
    for path in sorted(TESTDATA.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        function = doc.get("function", "canonicalize")
        for case in doc["cases"]:
            params.append(pytest.param(function, case, id=f"{path.stem}:{case['id']}"))
    return params


def input_bytes(case: Case) -> bytes:
    if "input_hex" in case:
        return bytes.fromhex(case["input_hex"])
    return str(case["input"]).encode("utf-8")


def expected_bytes(case: Case) -> bytes | None:
    """The answer as bytes, or None when the case only says ``"ok"``."""
    if "expected_hex" in case:
        return bytes.fromhex(case["expected_hex"])
    if case["expected"] == "ok":
        return None
    return str(case["expected"]).encode("utf-8")


def run(function: str, data: bytes) -> bytes:
    if function == "parse_canonical":
        parse_canonical(data)
        return data
    assert function == "canonicalize", function
    return canonical_bytes(parse_json(data))


def test_every_case_names_its_source() -> None:
    for param in load_cases():
        _, case = param.values
        assert case["description"] and case["source"], param.id
        assert ("error" in case) != ("expected" in case or "expected_hex" in case), param.id


@pytest.mark.parametrize(("function", "case"), load_cases())
def test_vector(function: str, case: Case) -> None:
    data = input_bytes(case)
    if "error" in case:
        with pytest.raises(NonCanonical) as caught:
            run(function, data)
        assert case["error"] in caught.value.message
        return

    got = run(function, data)
    expected = expected_bytes(case)
    if expected is not None:
        assert got == expected
    # The answer is itself canonical, parses back to the same value, and the
    # reference implementation writes the same bytes.
    value = parse_canonical(got)
    assert canonical_bytes(value) == got
    assert rfc8785.dumps(value) == got
    if "expected_value_order" in case:
        assert list(value.values()) == case["expected_value_order"]
