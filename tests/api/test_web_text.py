"""The web pages say every code the chain keeps in both languages, so a new rule, flag,
status or kind of money movement cannot reach a page as a bare code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carechain.api.web.text import _FLAGS_ZH, _RULES_ZH, ENTRY_WORDS, STATUS_WORDS, Words
from carechain.contracts.adjudication import FLAG_WORDS, RULE_WORDS

CONTRACTS = Path(__file__).resolve().parents[2] / "src" / "carechain" / "contracts"


def test_every_rule_and_flag_has_chinese_words() -> None:
    assert set(_RULES_ZH) == set(RULE_WORDS)
    assert set(_FLAGS_ZH) == set(FLAG_WORDS)
    assert Words("en").rule_of("max_price") == RULE_WORDS["max_price"]
    assert Words("zh").flag_of("code_settled_twice").endswith("(可能是假药、回流药或调包药)")


def test_every_status_and_money_movement_has_words() -> None:
    source = "".join(p.read_text("utf-8") for p in CONTRACTS.glob("*.py"))
    kinds = set(re.findall(r"post\(\s*[^,]+,\s*\"(\w+)\"", source))
    assert {"issue", "transfer", "claim", "copay", "instalment", "financing"} <= kinds
    assert kinds <= set(ENTRY_WORDS)
    # What the pages show a status of: claims, and instalment plans.
    shown = "".join((CONTRACTS / f).read_text("utf-8") for f in ("claims.py", "payments_credit.py"))
    pattern = (
        r'\["status"\] = "(\w+)"|_history\(ctx, claim, "(\w+)"|status="(\w+)"'
        r'|\bstatus = "(\w+)"|"status": "(\w+)"'
    )
    found = {s for group in re.findall(pattern, shown) for s in group if s}
    assert {"review", "approved", "denied", "copay_paid", "offered", "paid_off"} <= found
    assert found <= set(STATUS_WORDS)


@pytest.mark.parametrize("lang", ["zh", "en", "fr"])
def test_words_fall_back_to_chinese_first(lang: str) -> None:
    words = Words(lang)
    assert words.lang == ("en" if lang == "en" else "zh")
    assert words["login"] == ("Log in" if lang == "en" else "登录")
    assert words.status_of("no-such-status") == "no-such-status"
