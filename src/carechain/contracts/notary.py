"""Notary: anchor a document's fingerprint so anyone can later prove it existed.

A member anchors the keyed or salted SHA-256 fingerprint of a document it
holds off-chain (never the document, never a plain hash of guessable content)
with a short reference of its own. The chain records who anchored it and the
block time; anchoring the same fingerprint twice is refused, pointing to the
first anchor.

State (namespace ``notary``)::

    anchor/<fingerprint>    by, org, reference, height, time, txid
"""

from __future__ import annotations

import re

from carechain.contracts.runtime import Args, Context, Contract, contract_method
from carechain.errors import ContractError

_DIGEST = re.compile(r"[0-9a-f]{64}")
_REFERENCE = re.compile(r"[A-Za-z0-9._:/-]{0,64}")


class Notary(Contract):
    name = "notary"

    @contract_method()
    def anchor(self, ctx: Context, args: Args) -> None:
        digest = args.text("digest", pattern=_DIGEST)
        reference = args.text("reference", pattern=_REFERENCE, required=False, default="")
        existing = ctx.get(f"anchor/{digest}")
        if existing is not None:
            raise ContractError(
                f"fingerprint already anchored at block {existing['height']} by {existing['org']}"
            )
        caller = ctx.caller
        ctx.put(
            f"anchor/{digest}",
            {
                "by": caller.fingerprint,
                "org": caller.org_id,
                "reference": reference,
                "height": ctx.block.height,
                "time": ctx.time_ms,
                "txid": ctx.txid,
            },
        )
