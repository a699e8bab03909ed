"""Helpers for the GS1 tests: test data under ``testdata/`` and building ``Gs1Data``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from carechain.standards.gs1 import Gs1Data

TESTDATA = Path(__file__).parent / "testdata"


def load(name: str) -> Any:
    return json.loads((TESTDATA / name).read_text(encoding="utf-8"))


def data_of(elements: list[list[str]]) -> Gs1Data:
    """``Gs1Data`` from ``[[ai, value], ...]`` as written in the test data."""
    return Gs1Data.from_elements((ai, value) for ai, value in elements)
