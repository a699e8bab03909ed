"""Helpers for the FHIR tests: fixture paths and a small RFC 6902 JSON Patch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TESTDATA = Path(__file__).parent / "testdata"


def fixture_bytes(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def _pointer(pointer: str) -> list[str]:
    """RFC 6901: "/a/b~1c/0" -> ["a", "b/c", "0"]."""
    assert pointer.startswith("/"), pointer
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def apply_patch(document: Any, operations: list[dict[str, Any]]) -> Any:
    """Apply RFC 6902 ``add``, ``remove`` and ``replace`` in place; return the document."""
    for operation in operations:
        *parents, last = _pointer(operation["path"])
        target = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        op = operation["op"]
        if isinstance(target, list):
            if op == "add":
                index = len(target) if last == "-" else int(last)
                target.insert(index, operation["value"])
            elif op == "remove":
                del target[int(last)]
            else:
                assert op == "replace", op
                target[int(last)] = operation["value"]
        else:
            if op == "remove":
                del target[last]
            else:
                assert op in ("add", "replace"), op
                assert op == "add" or last in target, operation
                target[last] = operation["value"]
    return document
