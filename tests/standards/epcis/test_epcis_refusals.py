"""Documents the importer must refuse, loaded from ``testdata/refusals.json``.

Each case names the path into the document and a fragment of the problem;
an unsupported event (valid EPCIS that carechain has no call for) is skipped
with ``skip_unsupported=True``, anything else is refused even then.
"""

from __future__ import annotations

from typing import Any

import pytest
from epcis_support import load

from carechain.errors import InvalidInput
from carechain.standards.epcis import EPCIS_CONTEXT, InvalidEpcis, import_document

DOCUMENT = load("refusals.json")
CASES = [pytest.param(case, id=case["id"]) for case in DOCUMENT["cases"]]


def document_of(case: dict[str, Any]) -> Any:
    if "document" in case:
        return case["document"]
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-01T00:00:00Z",
        "epcisBody": {"eventList": [case["event"]]},
    }


def test_cases_have_unique_ids() -> None:
    ids = [case["id"] for case in DOCUMENT["cases"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES)
def test_refused_with_its_path(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidEpcis) as caught:
        import_document(document_of(case))
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.code == "invalid_epcis"
    assert error.path == case["path"]
    assert case["error"] in error.problem
    assert error.message == (f"{error.path}: {error.problem}" if error.path else error.problem)
    assert error.unsupported is case["unsupported"]


@pytest.mark.parametrize("case", CASES)
def test_only_unsupported_events_are_skipped_on_request(case: dict[str, Any]) -> None:
    if case["unsupported"]:
        assert import_document(document_of(case), skip_unsupported=True) == []
    else:
        with pytest.raises(InvalidEpcis):
            import_document(document_of(case), skip_unsupported=True)
