"""REST routes for drug traceability, and the public page a pack's QR code opens.

Changes are signed ``drugs.*`` transactions, one route a method; the route
checks it is the right call, submits it and waits until it commits. Reads
show a pack's verdict and journey. ``/01/{gtin}/21/{serial}`` (a GS1 Digital
Link path, what the QR code on a pack opens) and ``/cn/{code}`` (a 药品追溯码)
need no login and show no patient data.
"""

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from carechain.api.signed import commit, signed_call
from carechain.contracts.drugs import GENUINE
from carechain.contracts.membership import MemberRecord
from carechain.crypto.canonical import parse_json
from carechain.errors import CarechainError, Forbidden, InvalidInput
from carechain.identity.roles import OrgType, Role
from carechain.node.drugs import DrugService
from carechain.node.node import Node
from carechain.standards.epcis import ExportContext, export_document, import_document
from carechain.standards.gs1 import PackId, parse_pack_code
from carechain.standards.qr import qr_png, qr_svg, read_pack

MAX_WAIT_S = 60.0
MAX_IMAGE_BYTES = 20 * 1024 * 1024
METHODS = (
    "commission",
    "register_product",
    "aggregate",
    "disaggregate",
    "ship",
    "receive",
    "cancel_shipment",
    "reject_shipment",
    "dispense",
    "decommission",
    "recall",
    "verify",
    "license",
    "withdraw_licence",
)


def add_drug_routes(
    app: Any, node: Node, member: Callable[[Request], Awaitable[MemberRecord]]
) -> None:
    router = APIRouter(tags=["drugs"])
    Member = Annotated[MemberRecord, Depends(member)]
    Wait = Annotated[float, Query(gt=0, le=MAX_WAIT_S, description="seconds to wait for commit")]
    service = DrugService(node)

    def route_for(method: str) -> None:
        async def call(request: Request, who: Member, timeout: Wait = 10.0) -> Any:
            tx = await signed_call(node, request, "drugs", method)
            return await commit(node, tx, who, timeout)

        call.__name__ = f"drugs_{method}"
        call.__doc__ = f"Body: a signed ``drugs.{method}`` transaction; answers once it commits."
        router.post(f"/v1/drugs/{method}")(call)

    for method in METHODS:
        route_for(method)

    @router.get("/v1/drugs/pack")
    async def pack(who: Member, code: str, selling: bool = False) -> Any:
        """A pack by any scanned form: verdict, product, lot, expiry, holder, journey.
        ``selling``: judge custody as if the caller's organisation were selling it."""
        return await run_in_threadpool(
            functools.partial(service.view, code, who.org_id if selling else None, viewer=who)
        )

    @router.post("/v1/drugs/scan-image")
    async def scan_image(request: Request, who: Member, selling: bool = False) -> Any:
        """Body: a photo (PNG, JPEG, WebP) of a pack's QR code or DataMatrix."""
        data = await request.body()
        if len(data) > MAX_IMAGE_BYTES:
            raise InvalidInput(f"image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}")
        scanned = await run_in_threadpool(read_pack, data)
        return await run_in_threadpool(
            functools.partial(
                service.view, scanned.pack.key, who.org_id if selling else None, viewer=who
            )
        )

    @router.get("/v1/drugs/qr")
    async def qr(
        request: Request, _: Member, code: str, format: str = "png", resolver: str = ""
    ) -> Response:
        """The QR code (GS1 Digital Link) of a pack, as PNG or SVG. The link opens this
        node's public page unless ``resolver`` names another (https://id.gs1.org)."""
        pack_id = service.pack(code)
        base = resolver or str(request.base_url).rstrip("/")
        if format == "png":
            return Response(qr_png(pack_id, resolver=base), media_type="image/png")
        if format == "svg":
            return Response(qr_svg(pack_id, resolver=base), media_type="image/svg+xml")
        raise InvalidInput(f"format must be png or svg, not {format!r}")

    @router.get("/v1/drugs/epcis")
    async def epcis(
        _: Member, code: Annotated[list[str], Query(max_length=1000)], zone: str = "+00:00"
    ) -> Any:
        """The journeys of packs (``code`` repeated) as a GS1 EPCIS 2.0 JSON-LD document."""
        events = service.custody_events(code)
        now = max(node.state.time_ms, int(time.time() * 1000))
        return export_document(events, ExportContext(now, zone=zone))

    @router.post("/v1/drugs/epcis/plan")
    async def epcis_plan(request: Request, _: Member, skip_unsupported: bool = False) -> Any:
        """Body: an EPCIS 2.0 JSON-LD document. Answers with the drugs-contract calls it
        describes, in order, for the caller to sign and send (``/v1/transactions/batch``
        takes them all at once); a document that cannot be mapped is refused with the
        path of the first problem."""
        document = parse_json(await request.body())
        commands = import_document(document, skip_unsupported=skip_unsupported)
        return {
            "calls": [
                {"contract": "drugs", "method": c.method, "args": c.args, "source": c.source}
                for c in commands
            ]
        }

    @router.get("/v1/drugs/shipments/{shipment_id}")
    async def shipment(shipment_id: str, who: Member) -> Any:
        found = service.shipment(shipment_id)
        if who.org_id not in (found["from"], found["to"]) and who.org_type is not OrgType.REGULATOR:
            raise Forbidden("only the sender, the receiver or a regulator sees a shipment")
        return found

    @router.get("/v1/drugs/licences")
    async def licences(_: Member, org: str = "") -> Any:
        """Which manufacturer may commission which GS1 company prefix or 药品标识码."""
        return {"licences": await run_in_threadpool(service.licences, org)}

    @router.get("/v1/drugs/scans")
    async def scans(
        who: Member,
        suspicious: bool = False,
        after: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Any:
        """Verification scans, oldest first (regulators and auditors): where codes turn up."""
        if who.org_type is not OrgType.REGULATOR and who.role is not Role.AUDITOR:
            raise Forbidden("only a regulator or an auditor sees scans across the chain")
        return service.scans(after, limit, suspicious)

    # -- the public page -------------------------------------------------------------

    async def public(request: Request, make: Callable[[], PackId], lot: str = "") -> HTMLResponse:
        try:
            pack_id = make()
            view = await run_in_threadpool(service.view, pack_id.key, public=True)
        except CarechainError as exc:
            return HTMLResponse(_page_error(exc.message), status_code=exc.http_status)
        client = request.client.host if request.client else ""
        await run_in_threadpool(service.record_public_scan, view["pack"], view["verdict"], client)
        return HTMLResponse(_page(view, printed_lot=lot))

    # Starlette has already decoded the path: the parts are taken as they are, never
    # decoded again, and a serial may hold "/" (GS1 CSET 82).
    @router.get("/01/{gtin}/21/{serial:path}", response_class=HTMLResponse, include_in_schema=False)
    async def public_sgtin(request: Request, gtin: str, serial: str) -> HTMLResponse:
        return await public(request, lambda: PackId.sgtin(gtin, serial))

    @router.get(
        "/01/{gtin}/10/{lot}/21/{serial:path}",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    async def public_sgtin_lot(request: Request, gtin: str, lot: str, serial: str) -> HTMLResponse:
        return await public(request, lambda: PackId.sgtin(gtin, serial), lot)

    @router.get("/cn/{code}", response_class=HTMLResponse, include_in_schema=False)
    async def public_cn(request: Request, code: str) -> HTMLResponse:
        return await public(request, lambda: _cn_pack(code))

    app.include_router(router)


_COLOURS = {GENUINE: ("#1b7f3b", "✔"), "in_transit": ("#b26a00", "…")}
_STYLE = (
    "body{font-family:system-ui,'PingFang SC','Microsoft YaHei',sans-serif;max-width:40rem;"
    "margin:1rem auto;padding:0 1rem;color:#222}.verdict{padding:1rem;border-radius:.5rem;"
    "color:#fff;font-size:1.3rem}table{border-collapse:collapse;width:100%}td,th{text-align:left;"
    "padding:.3rem;border-bottom:1px solid #ddd}"
)


def _shell(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _page(view: dict[str, Any], printed_lot: str = "") -> str:
    colour, mark = _COLOURS.get(view["verdict"], ("#b00020", "✘"))
    says = view["says"]
    if printed_lot and view.get("lot") and printed_lot != view["lot"]:
        colour, mark = "#b00020", "✘"
        says += (  # a relabelled pack: the lot on the box is not the lot it was made in
            f"; but the lot printed on it ({printed_lot}) is not the lot it was made in"
        )
    pack_id = PackId.from_key(view["pack"])
    name = f"GTIN {pack_id.gtin} · {pack_id.serial}" if pack_id.gtin else pack_id.value
    rows = "".join(
        f"<tr><th>{label}</th><td>{escape(str(view[key]))}</td></tr>"
        for label, key in (
            ("药品 Drug", "product_name"),
            ("产品 Product", "product"),
            ("生产企业 Maker", "manufacturer"),
            ("批号 Lot", "lot"),
            ("有效期至 Expiry", "expiry"),
        )
        if view.get(key)
    )
    journey = "".join(
        f"<tr><td>{escape(_date(step['time']))}</td><td>{escape(step['org'])}</td>"
        f"<td>{escape(str(step['says']))}</td></tr>"
        for step in view.get("journey", [])
    )
    body = (
        f"<h1>药品追溯 Drug check</h1><p>{escape(name)}</p>"
        f'<p class="verdict" style="background:{colour}">{mark} {escape(says)}</p>'
        f"<table>{rows}</table>"
        + (
            "<h2>流通记录 Journey</h2><table><tr><th>Date</th><th>Organisation</th>"
            f"<th>What happened</th></tr>{journey}</table>"
            if journey
            else ""
        )
    )
    return _shell(f"Drug check: {view['says']}", body)


def _cn_pack(code: str) -> PackId:
    """The pack a /cn/ path names: a 药品追溯码 (a 69... retail barcode gets its own message)."""
    pack_id = parse_pack_code(code).pack
    if pack_id.gtin is not None:
        raise InvalidInput(f"{code[:40]!r} is not a 药品追溯码 (drug traceability code)")
    return pack_id


def _page_error(message: str) -> str:
    return _shell(
        "Drug check: not a pack code",
        f'<h1>药品追溯 Drug check</h1><p class="verdict" style="background:#b00020">✘ '
        f"{escape(message)}</p>",
    )


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
