"""``carechain drugs`` run as real subprocesses against a real node on 127.0.0.1: packs
commissioned from a file, packed into a case, shipped through the distributor to the
pharmacy, checked, dispensed, a copied code refused, a lot recalled, a QR code drawn and
read back from its image, and the regulator's view of scans.

GTIN 09506000134352 is GS1's own example GTIN and 81234567890123456789 a made-up
药品追溯码 of the right shape (tests/standards/gs1/testdata/README.md). Each command
costs a Python start (about half a second), so each test walks through a whole story.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from carechain.node.consortium import Consortium
from carechain.node.node import Node
from carechain.standards.gs1 import with_check_digit
from support import Server, license_demo_maker

pytestmark = pytest.mark.integration

GTIN = "09506000134352"
CN_CODE = "81234567890123456789"
PATIENT = "pumch:patient-7f3a9c"
CASE = with_check_digit("0" + "9506000" + "000000001")  # an SSCC under GS1's example prefix
MAKER, DISTRIBUTOR = "sinopharm-mfg/qa-01", "jd-logistics/admin"
PHARMACIST, REGULATOR = "yf-pharmacy/ph-chen", "nmpa/admin"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Run]


@pytest.fixture(autouse=True)
def _licensed(request: pytest.FixtureRequest) -> None:
    """The regulator licenses the demo maker's prefix and product code before a test's node runs."""
    if "node" in request.fixturenames:
        member = request.getfixturevalue("member")
        license_demo_maker(request.getfixturevalue("node"), member("nmpa/admin"))


@pytest.fixture
def cli(api: Server, consortium: Consortium) -> Cli:
    def run(who: str, *args: str) -> Run:
        """``carechain drugs ARGS`` signed as ``who`` (``org/member`` of the demo consortium)."""
        org, member_id = who.split("/")
        env = {
            **os.environ,
            "CARECHAIN_NODE": api.url,
            "CARECHAIN_IDENTITY": str(consortium.directory / "orgs" / org / "members" / member_id),
        }
        done = subprocess.run(
            [sys.executable, "-m", "carechain", "drugs", *args],
            capture_output=True,
            env=env,
            timeout=60,
        )
        return Run(done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8"))

    return run


def one_line_error(run: Run, *words: str) -> None:
    assert run.code == 2, run
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1, run.err
    for word in words:
        assert word in run.err, run.err


def sgtin(serial: str) -> str:
    return f"sgtin:{GTIN}.{serial}"


def test_packs_go_from_the_factory_through_the_distributor_to_a_patient(
    cli: Cli, node: Node, tmp_path: Path
) -> None:
    # One code a line, in the forms a scanner sends; line 4 has a wrong GTIN check digit.
    codes = tmp_path / "codes.txt"
    lines = [
        "# line 1 is a comment",
        f"https://id.gs1.org/01/{GTIN}/21/A1",
        f"(01){GTIN}(21)A2",
        "(01)09506000134353(21)A3",
        f"(01){GTIN}(17)291231(10)LOT-A(21)A3",
        "",
        CN_CODE,
    ]
    codes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    height = node.state.height
    bad = cli(
        MAKER, "commission", "--lot", "LOT-A", "--expiry", "291231", "--from-file", str(codes)
    )
    one_line_error(bad, f"{codes}:4", "check digit")
    assert node.state.height == height  # nothing was signed

    del lines[3]
    codes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    made = cli(
        MAKER, "commission", "--lot", "LOT-A", "--expiry", "291231", "--from-file", str(codes)
    )
    assert made.code == 0, made
    assert made.out.startswith("commissioned 4 pack(s): committed at height ")

    # A1 and A2 go into a case; the case and A3 travel through the distributor.
    packed = cli(MAKER, "aggregate", "--into", CASE, sgtin("A1"), sgtin("A2"))
    assert packed.code == 0 and f"packed 2 item(s) into {CASE}" in packed.out, packed
    shipped = cli(MAKER, "ship", "--to", "jd-logistics", CASE, sgtin("A3"))
    assert shipped.code == 0, shipped
    first = shipped.out.strip()
    assert first.startswith("shp-") and len(first) == 28
    in_transit = cli(PHARMACIST, "check", sgtin("A3"))
    assert in_transit.code == 1 and in_transit.out.startswith("… in transit"), in_transit
    assert cli(DISTRIBUTOR, "receive", first).code == 0
    second = cli(DISTRIBUTOR, "ship", "--to", "yf-pharmacy", CASE, sgtin("A3")).out.strip()
    received = cli(PHARMACIST, "receive", second)
    assert received.code == 0 and f"received {second} from jd-logistics: 2 item(s)" in received.out

    # At the counter: genuine, in the pharmacy's custody, with its whole journey.
    check = cli(PHARMACIST, "check", "--selling", f"https://id.gs1.org/01/{GTIN}/21/A1")
    assert check.code == 0, check
    verdict, *rest = check.out.splitlines()
    assert verdict == "✔ genuine and saleable"  # plain: stdout is not a terminal
    assert "\x1b[" not in check.out
    facts = dict(line.split(None, 1) for line in rest if not line.startswith(("journey", " ")))
    assert facts["product"] == GTIN and facts["lot"] == "LOT-A"
    assert facts["expiry"] == "2029-12-31" and facts["holder"] == f"yf-pharmacy (inside {CASE})"
    journey = [line.split(None, 2)[1:] for line in rest if line.startswith("  ")]
    assert journey == [
        ["sinopharm-mfg", "made and serialised"],
        ["sinopharm-mfg", f"packed into a case or pallet ({CASE})"],
        ["sinopharm-mfg", f"shipped to jd-logistics, shipment {first}"],
        ["jd-logistics", f"received from sinopharm-mfg, shipment {first}"],
        ["jd-logistics", f"shipped to yf-pharmacy, shipment {second}"],
        ["yf-pharmacy", f"received from jd-logistics, shipment {second}"],
    ]

    # Dispensed out of the case; a second pack with the same (copied) code is refused.
    dispensed = cli(PHARMACIST, "dispense", sgtin("A1"), "--patient", PATIENT)
    assert dispensed.code == 0 and dispensed.out.startswith(f"dispensed {sgtin('A1')}: committed")
    after = cli(PHARMACIST, "check", "--json", f"(01){GTIN}(21)A1")
    view = json.loads(after.out)
    assert after.code == 1 and view["verdict"] == "dispensed"
    assert view["journey"][-1]["patient"] == PATIENT
    copied = cli(PHARMACIST, "dispense", f"(01){GTIN}(21)A1")
    one_line_error(copied, "already dispensed")
    assert copied.out.startswith("✘ already dispensed to a patient (a copied code)")

    # The pharmacist opens the case and takes out a damaged pack. The 药品追溯码 pack is at home.
    assert cli(PHARMACIST, "disaggregate", CASE).code == 0
    assert cli(PHARMACIST, "decommission", sgtin("A3"), "--reason", "damaged").code == 0
    cn = cli(MAKER, "check", CN_CODE)
    assert cn.code == 0 and "holder    sinopharm-mfg" in cn.out, cn

    # A recall: not for a pharmacy to make; the regulator may.
    recall = ("recall", "--product", GTIN, "--lot", "LOT-A", "--reason", "quality")
    one_line_error(cli(PHARMACIST, *recall), "forbidden")
    assert cli(REGULATOR, *recall).code == 0
    recalled = cli(PHARMACIST, "check", sgtin("A2"))
    assert recalled.code == 1 and recalled.out.startswith("✘ recalled"), recalled
    assert "by nmpa: quality" in recalled.out


def test_a_qr_code_reads_back_and_scans_are_the_regulators(
    cli: Cli, node: Node, tmp_path: Path
) -> None:
    assert cli(MAKER, "commission", "--lot", "L7", "--expiry", "300600", sgtin("Q1")).code == 0
    png, svg = tmp_path / "q1.png", tmp_path / "q1.svg"
    assert cli(MAKER, "qr", sgtin("Q1"), "--out", str(png)).code == 0
    assert cli(MAKER, "qr", sgtin("Q1"), "--out", str(svg), "--format", "svg").code == 0
    assert png.read_bytes().startswith(b"\x89PNG") and b"<svg" in svg.read_bytes()

    # The photo is checked and the scan recorded, by the maker and by a pharmacy selling it.
    photo = cli(MAKER, "check-image", str(png), "--record")
    assert photo.code == 0 and "expiry    2030-06-30" in photo.out, photo
    assert "scan recorded: committed at height" in photo.err
    selling = cli(PHARMACIST, "check-image", str(png), "--selling", "--record")
    assert selling.code == 1 and "not in the custody" in selling.out, selling
    fake = cli(PHARMACIST, "check", "--record", sgtin("FAKE1"))
    assert fake.code == 1 and "never commissioned" in fake.out

    one_line_error(cli(PHARMACIST, "scans"), "forbidden")
    everything = cli(REGULATOR, "scans")
    assert everything.code == 0, everything
    assert [line.split()[1:4] for line in everything.out.splitlines()] == [
        ["sinopharm-mfg", "genuine", sgtin("Q1")],
        ["yf-pharmacy", "not_in_custody", sgtin("Q1")],
        ["yf-pharmacy", "unknown", sgtin("FAKE1")],
    ]
    suspicious = json.loads(cli(REGULATOR, "scans", "--suspicious", "--json").out)
    assert [s["verdict"] for s in suspicious["scans"]] == ["not_in_custody", "unknown"]
    paged = cli(REGULATOR, "scans", "--limit", "1")
    assert "more may follow: --after " in paged.err
    after = paged.err.split("--after ")[1].strip()
    assert len(cli(REGULATOR, "scans", "--after", after).out.splitlines()) == 2

    # One-line errors, before anything is signed.
    height = node.state.height
    one_line_error(cli(MAKER, "commission", "--lot", "L7", sgtin("Q2")), "argument 1", "--expiry")
    one_line_error(cli(MAKER, "check", "6901234567892"), "invalid_gs1", "商品条码")
    one_line_error(cli(MAKER, "aggregate", "--into", "123", sgtin("Q1")), "SSCC")
    one_line_error(cli(MAKER, "check-image", str(tmp_path / "missing.png")), "missing.png")
    assert node.state.height == height


def test_thousands_of_serials_go_in_several_transactions(
    cli: Cli, node: Node, tmp_path: Path
) -> None:
    assert cli(MAKER, "commission", "--lot", "L9", "--expiry", "301231", sgtin("S05499")).code == 0
    codes = tmp_path / "serials.txt"
    codes.write_text("".join(f"(01){GTIN}(21)S{i:05d}\n" for i in range(6000)))
    height = node.state.height
    made = cli(MAKER, "commission", "--lot", "L9", "--expiry", "301231", "--from-file", str(codes))
    # The first transaction (5,000 codes of one lot) commits; the second holds line 5500,
    # commissioned before.
    *progress, error = made.err.strip().splitlines()
    assert made.code == 2 and len(progress) == 1 and " of 6,000 packs: committed" in progress[0]
    assert f"{codes}:5500: pack {sgtin('S05499')} is already commissioned" in error, error
    done = int(progress[0].split()[0].replace(",", ""))
    assert f"(the first {done:,} packs are commissioned; from {codes}:{done + 1} on, not)" in error
    # A block for the first, and one for the refused second (kept as evidence).
    assert node.state.height == height + 2 and done == 5000


def test_epcis_documents_go_out_and_come_in(cli: Cli, node: Node, tmp_path: Path) -> None:
    assert cli(MAKER, "commission", "--lot", "EP1", "--expiry", "301231", sgtin("EP001")).code == 0
    exported = tmp_path / "journey.jsonld"
    made = cli(MAKER, "export-epcis", sgtin("EP001"), "--out", str(exported))
    assert made.code == 0, made
    doc = json.loads(exported.read_text())
    assert doc["type"] == "EPCISDocument" and len(doc["epcisBody"]["eventList"]) == 1
    # The same document for a pack not yet on the chain: a partner's commissioning.
    text = exported.read_text().replace("/21/EP001", "/21/EP002")
    incoming = tmp_path / "incoming.jsonld"
    incoming.write_text(text)
    dry = cli(MAKER, "import-epcis", str(incoming), "--dry-run")
    assert (
        dry.code == 0
        and "drugs.commission" in dry.out
        and node.state.get(f"drugs/pack/{sgtin('EP002')}") is None
    )
    imported = cli(MAKER, "import-epcis", str(incoming))
    assert imported.code == 0, imported
    assert node.state.get(f"drugs/pack/{sgtin('EP002')}") is not None
    # Again: the chain refuses, naming the event in the document.
    again = cli(MAKER, "import-epcis", str(incoming))
    one_line_error(again, "epcisBody.eventList[0]", "already commissioned", "0 of 1")
    broken = tmp_path / "broken.jsonld"
    broken.write_text(text.replace('"ObjectEvent"', '"MysteryEvent"'))
    one_line_error(cli(MAKER, "import-epcis", str(broken)), "invalid_epcis", "eventList[0]")


def test_a_named_product_shows_at_the_counter(cli: Cli) -> None:
    named = cli(MAKER, "register-product", "--product", GTIN, "--name", "阿莫西林胶囊",
                "--strength", "0.25 g")  # fmt: skip
    assert named.code == 0 and "is 阿莫西林胶囊" in named.out, named
    assert cli(MAKER, "commission", "--lot", "NM1", "--expiry", "301231", sgtin("NM1")).code == 0
    checked = cli(MAKER, "check", sgtin("NM1"))
    assert "drug      阿莫西林胶囊 0.25 g" in checked.out, checked
    one_line_error(cli("yf-pharmacy/ph-chen", "register-product", "--product", GTIN, "--name",
                       "Fake"), "forbidden")  # fmt: skip


def test_the_regulator_licenses_prefixes_and_a_shipment_can_be_refused(
    cli: Cli, node: Node
) -> None:
    # The demo maker's licences (the autouse fixture) and one more, from the command line.
    granted = cli(REGULATOR, "license", "--org", "sinopharm-mfg", "--gs1-prefix", "6901234")
    assert granted.code == 0 and "licensed 6901234 to sinopharm-mfg" in granted.out, granted
    listed = cli(MAKER, "licences", "--org", "sinopharm-mfg")
    assert [line.split()[0] for line in listed.out.splitlines()] == [
        "cn:8123456", "6901234", "9506000"]  # fmt: skip
    height = node.state.height
    one_line_error(cli(REGULATOR, "license", "--org", "sinopharm-mfg", "--gs1-prefix", "69A"),
                   "--gs1-prefix", "4 to 12 digits")  # fmt: skip
    one_line_error(cli(REGULATOR, "license", "--org", "sinopharm-mfg"), "exactly one")
    one_line_error(cli(MAKER, "license", "--org", "sinopharm-mfg", "--cn-product", "7654321"),
                   "forbidden")  # fmt: skip
    one_line_error(cli(REGULATOR, "withdraw-licence", "--gs1-prefix", "6901234", "--reason",
                       "whim"), "--reason")  # fmt: skip
    assert node.state.height == height + 1  # only the maker's refused licence was signed
    ended = cli(REGULATOR, "withdraw-licence", "--gs1-prefix", "6901234", "--reason", "error")
    assert ended.code == 0 and "withdrew the licence of 6901234" in ended.out, ended
    # A shipment the pharmacy refuses goes back; one the maker calls back stays.
    assert cli(MAKER, "commission", "--lot", "L9", "--expiry", "291231", sgtin("R1"),
               sgtin("R2")).code == 0  # fmt: skip
    first = cli(MAKER, "ship", "--to", "yf-pharmacy", sgtin("R1"))
    sent = first.out.strip()
    one_line_error(cli(PHARMACIST, "reject-shipment", sent, "--reason", "mouldy"), "--reason")
    one_line_error(cli(MAKER, "reject-shipment", sent, "--reason", "damaged"), "not sent to")
    refused = cli(PHARMACIST, "reject-shipment", sent, "--reason", "damaged")
    assert refused.code == 0, refused
    assert f"rejected {sent} from sinopharm-mfg (damaged): 1 item(s)" in refused.out
    second = cli(MAKER, "ship", "--to", "jd-logistics", sgtin("R2")).out.strip()
    called = cli(MAKER, "cancel-shipment", second, "--reason", "wrong_receiver")
    assert called.code == 0 and "stay with sinopharm-mfg" in called.out, called
    one_line_error(cli(MAKER, "cancel-shipment", "shp-123", "--reason", "other"), "shipment id")
    check = cli(MAKER, "check", "--selling", sgtin("R1"))
    assert check.code == 0 and "genuine" in check.out, check
