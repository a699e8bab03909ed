"""Records across a consortium: each hospital's peer keeps its own vault, and a
clinician reads another hospital's record through their own node, which relays
the signed request to the custodian's node. The custodian decides, audits on
the chain and serves; the relaying node checks the answer against its own copy
of the chain. Real etcd, real peers on 127.0.0.1, each with its own REST API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from carechain.api.client import ApiError, NodeClient, new_consent_id
from carechain.node.consortium import Consortium
from carechain.node.records import ServedRecord
from carechain.standards.fhir import parse_bundle
from etcd_support import Peers

pytestmark = pytest.mark.integration

PATIENT = "pumch:patient-7f3a9c"
EXAMPLES = Path(__file__).parent.parent / "standards" / "fhir" / "testdata" / "examples"
# FHIR R4 specification examples; tests/standards/fhir/testdata/README.md cites each.
GLUCOSE = (EXAMPLES / "observation-example-f001-glucose.json").read_bytes()
FEVER = (EXAMPLES / "condition-example-f201-fever.json").read_bytes()


@pytest.fixture
def served(network: Consortium) -> Iterator[Peers]:
    running = Peers(network)
    try:
        for org in ("pumch", "chaoyang-clinic"):
            running.start(org, serve=True)
        yield running
    finally:
        running.stop_all()


def client(peers: Peers, org: str, member: str) -> NodeClient:
    server = peers.servers[org]
    return NodeClient(server.url, peers.network.members[member])


def test_a_record_is_read_through_the_readers_own_node_from_its_custodian(
    served: Peers,
) -> None:
    pumch, clinic = served.nodes["pumch"], served.nodes["chaoyang-clinic"]
    assert pumch.records.orgs == ("pumch",) and clinic.records.orgs == ("chaoyang-clinic",)
    with (
        client(served, "pumch", "pumch/dr-wang") as wang,
        client(served, "chaoyang-clinic", "chaoyang-clinic/dr-zhao") as zhao,
        client(served, "chaoyang-clinic", "pumch/patient-7f3a9c") as patient,
    ):
        at_pumch = wang.add_records(PATIENT, [GLUCOSE])["records"][0]
        at_clinic = zhao.add_records(PATIENT, [FEVER])["records"][0]
        assert pumch.vault.entry(at_pumch) is not None and clinic.vault.entry(at_pumch) is None
        assert clinic.vault.entry(at_clinic) is not None and pumch.vault.entry(at_clinic) is None
        served.wait_same_height(max(pumch.state.height, clinic.state.height))

        # Without consent: refused by pumch's node, and the attempt is on the chain.
        with pytest.raises(ApiError) as refused:
            zhao.read_record(at_pumch)
        assert refused.value.http_status == 403 and refused.value.code == "access_refused"
        assert "answered by the node of pumch" in refused.value.message

        patient.grant_consent(
            {
                "consent": new_consent_id(),
                "grantee": "chaoyang-clinic",
                "purposes": ["treatment"],
                "end": int(time.time() * 1000) + 86_400_000,
            }
        )
        doc = zhao.read_record(at_pumch)  # the client checks the fingerprint too
        assert doc["resource"].encode() == GLUCOSE
        served.wait_same_height(pumch.state.height)
        log = patient.access_log(PATIENT)["events"]
        assert [(e["served_by"], e["outcome"]) for e in log] == [
            ("pumch", "refused"),
            ("pumch", "granted"),
        ]
        assert doc["access"]["txid"] == log[-1]["id"]

        # The patient downloads everything through the clinic's node: both vaults.
        bundle, headers = patient.export_records(PATIENT)
        resources = sorted(
            (orjson.loads(e.raw) for e in parse_bundle(bundle)), key=lambda r: r["resourceType"]
        )
        assert resources == [orjson.loads(FEVER), orjson.loads(GLUCOSE)]
        assert len(headers["x-carechain-access-event"].split(",")) == 2
        assert "x-carechain-held-elsewhere" not in headers

        # The custodian's node down: a clear error, nothing served, nothing lost.
        served.stop("pumch")
        with pytest.raises(ApiError) as down:
            zhao.read_record(at_pumch)
        assert down.value.http_status == 503 and down.value.code == "custodian_unreachable"
        bundle, headers = patient.export_records(PATIENT)
        assert [orjson.loads(e.raw) for e in parse_bundle(bundle)] == [orjson.loads(FEVER)]
        assert headers["x-carechain-held-elsewhere"] == f"{at_pumch}@pumch"


def test_a_relayed_request_is_not_relayed_again(served: Peers) -> None:
    with client(served, "pumch", "pumch/dr-wang") as wang:
        record = wang.add_records(PATIENT, [GLUCOSE])["records"][0]
    served.wait_same_height(served.nodes["pumch"].state.height)
    with client(served, "chaoyang-clinic", "chaoyang-clinic/dr-zhao") as zhao:
        response = zhao._http.get(  # a request that claims to be relayed already
            f"/v1/records/{record}",
            headers={
                **zhao_headers(zhao, f"/v1/records/{record}"),
                "x-carechain-forwarded-by": "ab" * 32,
            },
        )
    assert response.status_code == 404
    assert "does not keep the vault of pumch" in response.json()["error"]["message"]


def zhao_headers(c: NodeClient, path: str) -> dict[str, str]:
    from carechain.api.auth import sign_request

    return sign_request(c.suite, c.creds.private_key, c.creds.fingerprint, "GET", path, b"")


def test_a_custodian_node_that_serves_other_bytes_is_caught_by_the_relay(
    served: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    pumch = served.nodes["pumch"]
    with client(served, "pumch", "pumch/dr-wang") as wang:
        record = wang.add_records(PATIENT, [GLUCOSE])["records"][0]
    served.wait_same_height(pumch.state.height)
    honest = pumch.records._open

    def lying(found: dict[str, object]) -> ServedRecord:  # a custodian that edits a value
        opened = honest(found)
        return ServedRecord(opened.record, opened.data.replace(b"6.3", b"3.6"), opened.salt)

    pumch.records._open = lying  # type: ignore[method-assign]
    with (
        client(served, "chaoyang-clinic", "chaoyang-clinic/dr-zhao") as zhao,
        pytest.raises(ApiError) as caught,
    ):
        zhao.read_record(record, purpose="emergency", reason="unconscious")
    assert caught.value.code == "vault_tampered"
    assert "not matching its fingerprint on the chain" in caught.value.message
    assert "not matching the chain" in caplog.text


def test_a_custodian_cannot_pass_off_an_old_access_event_as_this_reads(served: Peers) -> None:
    pumch = served.nodes["pumch"]
    with client(served, "pumch", "pumch/dr-wang") as wang:
        record = wang.add_records(PATIENT, [GLUCOSE])["records"][0]
    served.wait_same_height(pumch.state.height)
    with client(served, "chaoyang-clinic", "chaoyang-clinic/dr-zhao") as zhao:
        first = zhao.read_record(record, purpose="emergency", reason="unconscious")
        served.wait_same_height(pumch.state.height)
        old = pumch.records._get(
            f"log/{PATIENT}/{first['access']['height']:012d}/{first['access']['txid']}"
        )
        honest_read = pumch.records.read

        def replaying(reader, evidence, record_id, purpose, reason="", timeout_s=10.0):  # type: ignore[no-untyped-def]
            return pumch.records._open(pumch.records.record(record_id)), old  # no new event

        pumch.records.read = replaying  # type: ignore[method-assign]
        try:
            with pytest.raises(ApiError) as caught:
                zhao.read_record(record, purpose="emergency", reason="unconscious")
        finally:
            pumch.records.read = honest_read  # type: ignore[method-assign]
    assert caught.value.http_status == 503 and caught.value.code == "access_pending"


def test_only_a_peer_of_the_custodian_organisation_is_believed_to_keep_its_vault(
    served: Peers,
) -> None:
    pharmacy = served.start("yf-pharmacy", serve=True)
    pharmacy.records.orgs = ("pumch", "chaoyang-clinic")  # a peer that lies about its vaults
    clinic = served.nodes["chaoyang-clinic"]
    assert clinic.records.custodians is not None
    assert clinic.records.custodians.url_for("pumch") == served.servers["pumch"].url
    assert clinic.records.custodians.url_for("yf-pharmacy") is None  # keeps no vault
