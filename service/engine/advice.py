"""What to do next, in the person's language: the last part of every verdict."""

from __future__ import annotations

from service.engine.schemas import ClaimedBrand, Lang


def _brand_check_zh(brand: ClaimedBrand) -> str:
    numbers = "、".join(brand.official_numbers[:2])
    if brand.category == "public_service":
        if not numbers:
            return f"{brand.name}的真实联系方式请通过政府官网核实，不要使用短信中的号码或链接"
        return f"短信提到{brand.name}：其官方电话是{numbers}，不会通过短信链接或私人号码联系您"
    app = f"{brand.app}App" if brand.app else f"{brand.name}官方App"
    if numbers:
        return f"请自行打开{app}或拨打官方电话{numbers}核实，不要使用短信或来电中提供的号码和链接"
    return f"{brand.name}暂无核实过的官方电话：请只在{app}内核实，不要拨打短信中的号码"


def _brand_check_en(brand: ClaimedBrand) -> str:
    numbers = ", ".join(brand.official_numbers[:2])
    if brand.category == "public_service":
        if not numbers:
            return f"Verify {brand.name} only through its government website, not the message"
        return (
            f"The message mentions {brand.name}: its official number is {numbers}; it never "
            "contacts you through links or private numbers"
        )
    app = f"the {brand.app} app" if brand.app else f"the official {brand.name} app"
    if numbers:
        return (
            f"Check in {app} or call the official number {numbers}; never use a number or link "
            "given in the message"
        )
    return (
        f"{brand.name} has no verified official number: check only inside {app}, and do not "
        "call numbers from the message"
    )


_ZH = {
    "scam": [
        "不要转账，不要缴纳任何“解冻费/手续费/保证金”",
        "不要提供验证码、密码或银行卡信息，不要共享屏幕或下载对方指定的App",
        "如已转账或泄露信息，请立即拨打110报警，可拨打96110咨询；将短信转发至12321举报",
    ],
    "abusive": [
        "保留短信、通话录音和截图等证据",
        "暴力催收、骚扰通讯录联系人属于违规行为：可向平台官方客服投诉，或拨打12378（金融监管总局）、12363（人民银行）投诉",
        "如遭人身威胁，请拨打110报警",
    ],
    "legit": [
        "这更像正规提醒：只通过官方App或官方电话还款，不要向任何个人账户转账",
    ],
    "other": [
        "未发现催收诈骗特征；仍请勿点击陌生链接，勿向任何人提供验证码",
    ],
}

_EN = {
    "scam": [
        "Do not transfer money and do not pay any 'unfreezing', handling or deposit fee",
        "Never give a verification code, password or card details; do not share your screen "
        "or install an app the caller names",
        "If you already paid or shared details, call 110 now; 96110 gives anti-fraud advice; "
        "forward the SMS to 12321 to report it",
    ],
    "abusive": [
        "Keep the messages, call recordings and screenshots as evidence",
        "Threatening collection and contacting your contacts break the rules: complain to the "
        "platform's official service, or to 12378 (NFRA) or 12363 (PBoC)",
        "If you are threatened with violence, call 110",
    ],
    "legit": [
        "This looks like a genuine reminder: repay only through the official app or hotline, "
        "never to a personal account",
    ],
    "other": [
        "No sign of a collection scam; still, do not open unknown links or share codes",
    ],
}

_CALL_ZH = "对方自称平台、银行或公检法时，请挂断后自行拨打官方电话核实"
_CALL_EN = (
    "If a caller claims to be a platform, bank, police or court, hang up and call the official "
    "number yourself"
)


def build(category: str, kind: str, brands: list[ClaimedBrand], lang: Lang = "zh") -> list[str]:
    """Advice lines for a verdict: general steps for the category, then how to verify the brand."""
    english = lang == "en"
    lines = list((_EN if english else _ZH)[category])
    if category != "other":
        for brand in brands[:2]:
            lines.append(_brand_check_en(brand) if english else _brand_check_zh(brand))
    if kind == "call" and category in {"scam", "abusive"}:
        lines.append(_CALL_EN if english else _CALL_ZH)
    return lines
