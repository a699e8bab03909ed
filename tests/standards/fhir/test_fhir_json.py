"""The JSON layer: exact encoding checked against the standard library; lazy model imports."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from carechain.standards.fhir._json import dump_compact, load_object

# JSON values without floats: what json.dumps writes the same way our encoder must.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
DECIMAL_TEXT = st.from_regex(r"\A-?(0|[1-9][0-9]{0,8})(\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?\Z")


@given(JSON_VALUES)
def test_dump_compact_matches_the_standard_library(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with contextlib.suppress(UnicodeEncodeError):  # lone surrogates: never loaded
        assert dump_compact(value) == expected


@given(DECIMAL_TEXT)
def test_a_number_is_written_back_as_it_was_read(text: str) -> None:
    raw = f'{{"value":{text},"list":[{text},1]}}'.encode()
    _, value = load_object(raw, max_bytes=None, exact_decimals=True)
    assert dump_compact(value) == raw


def test_importing_the_package_loads_no_model() -> None:
    code = (
        "import sys, carechain.standards.fhir as f\n"
        "assert not [m for m in sys.modules if m.startswith('fhir')], 'eager import'\n"
        'f.parse_resource(\'{"resourceType":"Observation","status":"final","code":{"text":"x"}}\')\n'
        "assert 'fhir.resources.R4B.observation' in sys.modules\n"
        "assert 'fhir.resources.R4B.claim' not in sys.modules, 'unrelated model imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
