"""What the web pages say, in Chinese and English (ARCHITECTURE.md: China first).

``say(lang)`` gives a page's words; rules, flags and statuses the chain keeps as
codes are said in words here too. The English of rules and flags is the
contracts' own (``RULE_WORDS``, ``FLAG_WORDS``), so both languages say the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from carechain.contracts.adjudication import FLAG_WORDS, RULE_WORDS

LANGS = ("zh", "en")

_WORDS: dict[str, tuple[str, str]] = {
    "app": ("carechain 医疗链", "carechain"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "login_name": ("登录名", "Login name"),
    "password": ("密码", "Password"),
    "code": ("动态验证码(6 位)", "One-time code (6 digits)"),
    "login_help": (
        "输入密码和身份验证器应用中的 6 位动态码。",
        "Enter your password and the 6-digit code from your authenticator app.",
    ),
    "logged_out": ("您已退出。", "You have logged out."),
    "session_ended": ("会话已结束,请重新登录。", "Your session has ended; please log in again."),
    "home": ("首页", "Home"),
    "my_claims": ("我的理赔", "My claims"),
    "our_claims": ("本机构理赔", "Our claims"),
    "older": ("更早的理赔", "Older claims"),
    "my_accounts": ("我的账户", "My accounts"),
    "accounts": ("账户", "Accounts"),
    "queue": ("待审核理赔", "Review queue"),
    "find_claim": ("查找理赔", "Find a claim"),
    "claim_id": ("理赔编号", "Claim id"),
    "open": ("打开", "Open"),
    "claim": ("理赔", "Claim"),
    "status": ("状态", "Status"),
    "submitted": ("提交时间", "Submitted"),
    "provider": ("医疗机构", "Provider"),
    "insurer": ("保险方", "Insurer"),
    "patient": ("患者", "Patient"),
    "total": ("申报金额", "Claimed"),
    "insurer_share": ("保险支付", "Insurer pays"),
    "patient_share": ("个人自付", "You pay"),
    "patient_share_desk": ("患者自付", "Patient pays"),
    "copay": ("自付款", "Co-pay"),
    "payment": ("保险支付状态", "Insurer's payment"),
    "no_claims": ("暂无理赔。", "No claims yet."),
    "queue_empty": ("没有待审核的理赔。", "No claims are waiting for review."),
    "lines": ("明细", "Lines"),
    "line": ("行", "Line"),
    "kind": ("类别", "Kind"),
    "item_code": ("项目编码", "Code"),
    "day": ("日期", "Date"),
    "quantity": ("数量", "Qty"),
    "amount": ("金额", "Amount"),
    "outcome": ("结果", "Outcome"),
    "why": ("依据", "Why"),
    "flags": ("风险提示", "Flags"),
    "flags_help": (
        "以下规则标记了此理赔,需要人工审核:",
        "These rules flagged the claim for a person to review:",
    ),
    "history": ("进度", "Progress"),
    "height": ("区块", "Block"),
    "note": ("说明", "Note"),
    "review": ("审核", "Review"),
    "approve": ("批准并支付", "Approve and pay"),
    "deny": ("拒付", "Deny"),
    "review_note": ("审核意见(必填)", "Review note (required)"),
    "pay_copay": ("支付自付款", "Pay co-pay"),
    "settle": ("立即支付", "Pay now"),
    "settle_help": (
        "此理赔已批准,但当时保险方账户余额不足。应付:",
        "This claim was approved while the insurer's account was short. To pay:",
    ),
    "done_settled": ("已支付。", "Paid."),
    "copay_due": ("待支付自付款:", "Co-pay due:"),
    "fhir": ("FHIR ClaimResponse", "FHIR ClaimResponse"),
    "done_approved": ("已批准,保险方已付款。", "Approved; the insurer has paid."),
    "done_denied": ("已拒付。", "Denied."),
    "done_copay": ("自付款已支付。", "Co-pay paid."),
    "currency": ("币种", "Currency"),
    "balance": ("可用余额", "Available"),
    "held": ("冻结", "Held"),
    "account_total": ("合计", "Total"),
    "statement": ("最近流水", "Recent entries"),
    "when": ("时间", "When"),
    "what": ("事项", "What"),
    "change": ("变动", "Change"),
    "no_accounts": ("暂无账户。", "No accounts yet."),
    "error": ("出错了", "Something is wrong"),
    "back": ("返回", "Back"),
    "role": ("身份", "Role"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "home_help": ("请选择:", "Choose:"),
    "nothing_here": (
        "此账号的角色在网页上暂无可用功能;请使用 REST API 或命令行。",
        "There is nothing on the web pages for this login's role yet; use the REST API or the CLI.",
    ),
    "service": ("诊疗项目", "Service"),
    "drug": ("药品", "Drug"),
    "pack": ("追溯码", "Pack"),
    "record": ("档案", "Record"),
    "plan": ("分期付款计划", "Instalment plan"),
    "my_plans": ("我的分期计划", "My instalment plans"),
    "no_plans": ("暂无分期计划。", "No instalment plans."),
    "open_plan": ("查找分期计划", "Open a plan"),
    "plan_id": ("计划编号", "Plan id"),
    "bank": ("银行", "Bank"),
    "principal": ("本金", "Principal"),
    "rate": ("年利率", "Yearly rate"),
    "remaining": ("待还", "Left to pay"),
    "overdue": ("逾期期数", "Overdue"),
    "schedule": ("还款计划", "Schedule"),
    "due": ("到期", "Due"),
    "plan_offer": (
        "银行提供此分期计划;接受后银行立即向医疗机构付款。",
        "The bank offers this plan; if you accept, the bank pays the provider at once.",
    ),
    "accept_plan": ("接受", "Accept"),
    "decline_plan": ("拒绝", "Decline"),
    "next_due": ("下一期:", "Next instalment:"),
    "pay_instalment": ("还款", "Pay instalment"),
    "done_accept": ("已接受,银行已向医疗机构付款。", "Accepted; the bank has paid the provider."),
    "done_decline": ("已拒绝。", "Declined."),
    "done_instalment": ("本期已还款。", "Instalment paid."),
    "my_records": ("我的健康档案", "My health records"),
    "records_note": (
        "病历内容保存在医院的加密库中,不上链;链上只有档案指纹、您的授权和每一次访问的记录。",
        "Record contents stay encrypted in each hospital's vault, never on the chain; the "
        "chain holds their fingerprints, your consents and every access.",
    ),
    "records_list": ("档案", "Records"),
    "no_records": ("暂无档案。", "No records yet."),
    "custodian": ("保管机构", "Kept by"),
    "consents": ("我的授权", "My consents"),
    "no_consents": ("暂无授权。", "No consents."),
    "grantee": ("被授权方", "Grantee"),
    "purposes": ("用途", "Purposes"),
    "purpose": ("用途", "Purpose"),
    "scope": ("范围", "Scope"),
    "all_records": ("全部档案", "all records"),
    "until": ("截止", "Until"),
    "revoke": ("撤销", "Revoke"),
    "grant": ("授权", "Grant consent"),
    "grantee_help": ("机构编号(如 chaoyang-clinic)", "Organisation id (e.g. chaoyang-clinic)"),
    "scope_help": ("档案类型(不选为全部)", "Record types (none ticked: all)"),
    "until_help": ("有效期至", "Valid until"),
    "access_log": ("访问记录", "Who read my records"),
    "access_help": (
        "每一次读取(包括被拒绝的)都先记在链上,数据才离开医院。",
        "Every read, refused ones too, is recorded on the chain before any data leaves "
        "the hospital.",
    ),
    "reader": ("读取方", "Reader"),
    "break_glass": ("紧急调阅", "break-glass"),
    "no_events": ("还没有人读取过您的档案。", "Nobody has read your records yet."),
    "more_events": ("更多记录", "More"),
    "done_granted": ("授权已生效。", "Consent granted."),
    "done_revoked": ("授权已撤销。", "Consent revoked."),
    "chain_note": (
        "理赔状态、裁定和支付都记录在区块链上;病历内容不上链。",
        "The claim's status, adjudication and payment are on the chain; record contents are not.",
    ),
}

STATUS_WORDS: dict[str, tuple[str, str]] = {
    "submitted": ("已提交", "submitted"),
    "review": ("人工审核中", "in review"),
    "approved": ("已批准,待支付", "approved, awaiting payment"),
    "paid": ("已支付", "paid"),
    "denied": ("已拒付", "denied"),
    "not_covered": ("不在保障范围", "not covered"),
    "copay_paid": ("自付款已付", "co-pay paid"),
    "awaiting_funds": ("保险方账户余额不足,待支付", "waiting for money in the insurer's account"),
    "requested": ("待支付", "due"),
    "none": ("无", "none"),
    "accepted": ("通过", "accepted"),
    "offered": ("待接受", "offered"),
    "treatment": ("诊疗", "treatment"),
    "payment": ("支付", "payment"),
    "research": ("科研", "research"),
    "emergency": ("急救", "emergency"),
    "self": ("本人", "self"),
    "granted": ("已允许", "granted"),
    "refused": ("已拒绝", "refused"),
    "partial": ("部分允许", "partly granted"),
    "revoked": ("已撤销", "revoked"),
    "expired": ("已过期", "expired"),
    "pending": ("未生效", "not yet in force"),
    "erased": ("已删除", "erased"),
    "active": ("有效", "active"),
    "late": ("逾期", "late"),
    "paid_off": ("已还清", "paid off"),
    "declined": ("已拒绝", "declined"),
    "reduced": ("部分支付", "reduced"),
}

ENTRY_WORDS: dict[str, tuple[str, str]] = {
    "issue": ("存入", "deposit"),
    "redeem": ("取出", "withdrawal"),
    "transfer": ("转账", "transfer"),
    "hold": ("冻结", "hold"),
    "capture": ("冻结扣款", "hold captured"),
    "release": ("解冻", "hold released"),
    "fx": ("换汇", "currency exchange"),
    "financing": ("分期放款", "financing paid out"),
    "instalment": ("分期还款", "instalment"),
    "claim": ("理赔支付", "claim payment"),
    "copay": ("自付款", "co-pay"),
}

_RULES_ZH = {
    "covered": "保单保障范围内",
    "coverage_period": "服务日期不在保障期内",
    "no_policy": "服务日期当天没有生效的保单版本",
    "out_of_network": "该医疗机构不在保单的定点网络内",
    "waiting_period": "服务在保障的等待期内",
    "not_covered": "保单不保障此项目或药品",
    "preauthorisation": "保单要求事前审批,但没有审批记录",
    "no_trace_code": "药品须在发药时扫描追溯码(无码不结算)",
    "untraced_pack": "链上没有该机构向此患者发出该药盒的记录",
    "after_death": "服务日期在患者登记的死亡日期之后",
    "max_price": "按保单最高限价核减",
    "per_claim_limit": "按保单单次限额核减",
    "annual_limit": "按保单年度剩余限额核减",
    "legacy_stock": "按追溯规则实施前购入的库存药品支付",
    "repeated_line": "同一项目或药盒已在本理赔前面的行中出现:请合并为一行并填写数量",
}

_FLAGS_ZH = {
    "duplicate": "同一患者同一天的同一项目此前已申报过",
    "phantom_encounter": "链上没有记录显示发生过此次就诊或操作",
    "phantom_drug": "链上没有该药盒的发药记录",
    "pack_other_patient": "该药盒发给了另一位患者",
    "after_death": "有服务日期在患者登记的死亡日期之后",
    "over_limit": "金额超过保单限额",
    "unbundling": "打包项目被拆分申报",
    "code_settled_twice": "该追溯码已结算过(可能是假药、回流药或调包药)",
    "pack_mismatch": "该药盒由其他机构发出,或是其他产品",
}

_ROLES: dict[str, tuple[str, str]] = {
    "admin": ("管理员", "administrator"),
    "clinician": ("医生", "clinician"),
    "pharmacist": ("药师", "pharmacist"),
    "staff": ("工作人员", "staff"),
    "auditor": ("审计员", "auditor"),
    "patient": ("患者", "patient"),
}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "zh" else pair[1]


class Words(Mapping[str, str]):
    """A page's words in one language: ``t["login"]``, ``t.status_of("paid")``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else LANGS[0]

    def __getitem__(self, key: str) -> str:
        return _pick(_WORDS[key], self.lang)

    def __iter__(self) -> Iterator[str]:
        return iter(_WORDS)

    def __len__(self) -> int:
        return len(_WORDS)

    def status_of(self, code: str) -> str:
        pair = STATUS_WORDS.get(code)
        return code if pair is None else _pick(pair, self.lang)

    def entry_of(self, code: str) -> str:
        pair = ENTRY_WORDS.get(code)
        return code if pair is None else _pick(pair, self.lang)

    def rule_of(self, code: str) -> str:
        if self.lang == "zh" and code in _RULES_ZH:
            return _RULES_ZH[code]
        return RULE_WORDS.get(code, code)

    def flag_of(self, code: str) -> str:
        if self.lang == "zh" and code in _FLAGS_ZH:
            return _FLAGS_ZH[code]
        return FLAG_WORDS.get(code, code)

    def role_of(self, code: str) -> str:
        pair = _ROLES.get(code)
        return code if pair is None else _pick(pair, self.lang)


def say(lang: str) -> Words:
    return Words(lang)
