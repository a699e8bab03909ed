"""Contracts: deterministic business rules over the world state.

A contract never imports the node, the API or the ordering. ``default_contracts``
is the set every peer of a consortium runs; peers must run the same set.
"""

from __future__ import annotations

from carechain.contracts.claims import Claims
from carechain.contracts.drugs import Drugs
from carechain.contracts.governance import Governance
from carechain.contracts.notary import Notary
from carechain.contracts.payments import Payments
from carechain.contracts.records import Records
from carechain.contracts.runtime import Contract


def default_contracts() -> list[Contract]:
    return [Governance(), Notary(), Records(), Drugs(), Payments(), Claims()]
