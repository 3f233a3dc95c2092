"""Number signals: whether the numbers and links of a message agree with the brands it names.

`number_signals` compares the sender and every contact with what the directory lists for the
claimed brands and emits `Signal`s with ORIGINAL spans (a brand's name sent from a mobile, a
callback number that is not the brand's, a link shortener, a look-alike short code...).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from types import MappingProxyType

import re2

from service.engine.normalize import Normalized
from service.engine.numbers.directory import BrandMention, Contact, Directory
from service.engine.numbers.links import SHORT_LINK_HOSTS, valid_ipv4
from service.engine.numbers.parse import NumberInfo, NumberType, parse_number
from service.engine.schemas import Signal

_IDENTITY_WORDS = re2.compile(
    "客服|官方|专员|催收|法务|风控|工作人员|中心|部门|我是|本人是|贷后|审核|经理|通知|客户经理"
)
# "受招联委托 / 招联委托的合作机构": the writer speaks as an agency entrusted by the brand, not
# as the brand itself, so a mobile or landline sender is what such agencies use (what they ask
# for is still judged by the rules: a fee or a private account stays a scam).
_ENTRUSTED_AGENCY = re2.compile(
    "受[^,。!?;]{1,16}委托|委托(?:的)?(?:我司|我方|我们|本公司|本所)|"
    "委托的?(?:合作机构|第三方|催收|资产管理|律师|律所|外包|贷后|服务)"
)


# Hand-set priors (log-odds scale, like rule weights) until the model learns them from the corpus.
SIGNAL_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        # legit; halved when the list entry is unverified. Spoofable (伪基站).
        "official_sender": 1.0,
        "official_port_suffix": 0.4,  # legit, weak: 106 port ending in the brand's 955xx number
        "brand_number_mismatch": 2.5,  # callback number in the text is not the claimed brand's
        "brand_link_mismatch": 2.5,  # link/domain is not the claimed brand's
        "lookalike_domain": 2.0,  # a brand's name inside a domain it does not own
        "sender_mobile_claims_brand": 2.0,  # mobile/virtual mobile sender speaking as a brand
        "sender_landline_claims_brand": 1.5,
        "sender_brand_mismatch": 1.5,  # official number of brand A signs as brand B
        # An unlisted 95/96 code signs as a brand with known numbers.
        "sender_not_brand_number": 1.0,
        "international_sender": 2.0,
        "international_lookalike_official": 3.0,  # +95188 / 0095188: foreign, dressed as 95188
        "virtual_mobile_sender": 0.8,  # MVNO/IoT: a moderate risk feature, not proof (§6)
        "spoofed_short_code": 2.0,  # 区号+95xxx not on a list, +86 before a short code or 400
        "unofficial_400": 1.0,  # 400 caller or callback not on the brand's list
        "public_service_with_link": 3.0,  # genuine 12381/96110 messages carry no links or numbers
        "ip_link": 2.0,
        "short_link": 1.0,
    }
)

_TYPE_ZH = {
    NumberType.MOBILE: "普通手机号",
    NumberType.VIRTUAL_MOBILE: "虚拟运营商/物联网号段",
    NumberType.LANDLINE: "固定电话",
    NumberType.SERVICE_400: "400/800号码",
    NumberType.INTERNATIONAL: "境外号码",
    NumberType.SHORT_CODE: "短号码",
}
_TYPE_EN = {
    NumberType.MOBILE: "an ordinary mobile number",
    NumberType.VIRTUAL_MOBILE: "a virtual-operator/IoT number",
    NumberType.LANDLINE: "a landline",
    NumberType.SERVICE_400: "a 400/800 number",
    NumberType.INTERNATIONAL: "a foreign number",
    NumberType.SHORT_CODE: "a short code",
}
# Which kind of virtual number, in words rather than the internal detail code ("mvno").
_VIRTUAL_ZH = {
    "mvno": "虚拟运营商号段（162/165/167/170/171）",
    "iot_data_sim": "物联网卡号段（14x，一般只能上网）",
}
_PERSONAL_TYPES = (NumberType.MOBILE, NumberType.VIRTUAL_MOBILE, NumberType.LANDLINE)


def number_signals(
    kind: str,
    sender: NumberInfo | None,
    brands: list[BrandMention],
    contacts: list[Contact],
    norm: Normalized | None,
    directory: Directory,
) -> list[Signal]:
    """Signals from the sender and the numbers/links in the text, against the claimed brands."""
    builder = _SignalBuilder(kind, sender, brands, contacts, norm, directory)
    builder.sender_signals()
    builder.contact_signals()
    return builder.signals


class _SignalBuilder:
    def __init__(
        self,
        kind: str,
        sender: NumberInfo | None,
        brands: list[BrandMention],
        contacts: list[Contact],
        norm: Normalized | None,
        directory: Directory,
    ) -> None:
        self.kind = kind
        self.sender = sender
        self.contacts = contacts
        self.norm = norm
        self.directory = directory
        self.signals: list[Signal] = []
        known = [m for m in brands if m.brand_id in directory.brands]
        self.claimed = [m.brand_id for m in known]
        self.signature = next((m for m in known if m.signature), None)
        self.lenders = [b for b in self.claimed if not directory.brands[b].is_public_service]
        self.sender_owners = directory.owners(sender)
        self.sender_anomalous = bool(sender and sender.brand and not _displayed_normally(sender))
        # Whose callback numbers and links the text must use: the brands it names, or, when it
        # names none, the brand whose official number sent it (a fake base station sends from a
        # spoofed 95599 and gives its own callback number: number_facts.md, 伪基站).
        # Brands with open lists (services.yaml) vouch for no closed set of numbers and links.
        speaking = self.lenders or (
            []
            if self.sender_anomalous
            else sorted(b for b in self.sender_owners if not directory.brands[b].is_public_service)
        )
        self.speaks_as = [b for b in speaking if not directory.brands[b].open_lists]

    # -- helpers --------------------------------------------------------------------------------

    def _name(self, brand_id: str | None) -> str:
        if brand_id is None:
            return ""
        brand = self.directory.brands.get(brand_id)
        return brand.name if brand else brand_id

    def _brand_list(self, brand_ids: list[str]) -> str:
        return "、".join(self._name(b) for b in brand_ids)

    def _add(
        self,
        signal_id: str,
        category: str,
        zh: str,
        en: str,
        contact: Contact | None = None,
        weight: float | None = None,
    ) -> None:
        span = evidence = None
        if contact is not None and self.norm is not None:
            span = self.norm.span(contact.start, contact.end)
            evidence = self.norm.evidence(contact.start, contact.end)
        elif self.sender is not None and contact is None:
            evidence = self.sender.raw
        self.signals.append(
            Signal(
                id=signal_id,
                source="numbers",
                category=category,  # type: ignore[arg-type]
                weight=SIGNAL_WEIGHTS[signal_id] if weight is None else weight,
                evidence=evidence,
                span=span,
                explanation=zh,
                explanation_en=en,
            )
        )

    def _claims_identity(self) -> bool:
        if self.signature is not None:
            return True
        if not (self.claimed and self.norm) or _ENTRUSTED_AGENCY.search(self.norm.text):
            return False
        return bool(_IDENTITY_WORDS.search(self.norm.text))

    # -- the sender -----------------------------------------------------------------------------

    def sender_signals(self) -> None:
        sender = self.sender
        if sender is None:
            return
        if sender.type is NumberType.INTERNATIONAL:
            self._international_sender(sender)
        elif parse_number(sender.raw).anomalous or (
            sender.detail == "area_code_plus_short" and sender.brand is None
        ):
            self._spoofed_short_code(sender)
        elif sender.brand is not None:
            self._official_sender(sender)
        elif sender.type in _PERSONAL_TYPES:
            if sender.type is NumberType.VIRTUAL_MOBILE:
                virtual_zh = _VIRTUAL_ZH.get(sender.detail or "", _TYPE_ZH[sender.type])
                self._add(
                    "virtual_mobile_sender",
                    "scam",
                    f"来电/短信号码属于{virtual_zh}，这类号段常被用于诈骗；"
                    "正规平台不用此类号码联系客户",
                    f"The sender is {_TYPE_EN[sender.type]} ({sender.detail}), a range often used "
                    "in fraud; licensed platforms do not contact customers from such numbers",
                )
            if (self.lenders or self.claimed) and self._claims_identity():
                landline = sender.type is NumberType.LANDLINE
                names = self._brand_list(self.claimed[:2])
                self._add(
                    "sender_landline_claims_brand" if landline else "sender_mobile_claims_brand",
                    "scam",
                    f"短信/来电自称{names}，却来自{_TYPE_ZH[sender.type]}；正规平台和机构只用官方号码联系客户",
                    f"The message speaks as {names} but comes from {_TYPE_EN[sender.type]}; "
                    "platforms and authorities contact customers only from official numbers",
                )
        elif sender.type is NumberType.SERVICE_400:
            if self.kind == "call" or self.lenders:
                self._add(
                    "unofficial_400",
                    "scam",
                    "该400号码不在任何官方名单上；正规企业的400热线一般只接听、不外呼",
                    "This 400 number is on no official list; company 400 hotlines normally only "
                    "take calls and do not call out",
                )
        elif sender.type is NumberType.SHORT_CODE:
            self._unlisted_short_sender(sender)

    def _international_sender(self, sender: NumberInfo) -> None:
        if sender.detail == "lookalike_short_code":
            imitated = self.directory.lookalike_brand(sender)
            short = parse_number(sender.raw).short or ""
            who = f"（{self._name(imitated)}的官方号码）" if imitated else ""
            self._add(
                "international_lookalike_official",
                "scam",
                f"号码{sender.raw}是境外号码（国家/地区：{sender.region or '未知'}），"
                f"只是看起来像官方短号{short}{who}；境外来电会带+或00前缀，官方短号不会这样显示",
                f"{sender.raw} is a foreign number (region {sender.region or 'unknown'}) that only "
                f"looks like the official short code {short}; calls from abroad carry + or 00",
            )
            return
        self._add(
            "international_sender",
            "scam",
            f"号码来自境外（{sender.region or '未知地区'}）；"
            "国内平台、银行和公检法不会用境外号码联系你",
            f"The number is foreign ({sender.region or 'unknown region'}); Chinese platforms, "
            "banks and police do not contact you from abroad",
        )

    def _spoofed_short_code(self, sender: NumberInfo) -> None:
        imitated = sender.brand or self.directory.lookalike_brand(sender)
        who = f"（像是{self._name(imitated)}的号码）" if imitated else ""
        if sender.detail == "plus86_400":
            zh = f"400号码无法从境外拨打，显示为“+86 400”{who}多为改号软件伪造"
            en = "400 numbers cannot be dialled from abroad; a '+86 400' display is usually spoofed"
        elif sender.detail == "plus86_short":
            zh = f"国内收到的官方短号不会带“+86”前缀{who}，这种显示常见于改号软件"
            en = "Official short codes received in China do not carry +86; this display is typical "
            en += "of caller-ID spoofing"
        else:
            zh = f"“区号+95/96短号”{who}不在官方名单上，警方提示这是常见的改号冒充方式"
            en = "An area code in front of a 95/96 short code is not on any official list; police "
            en += "warn that this display is a common spoof"
        weight = None if imitated else 1.5
        self._add("spoofed_short_code", "scam", zh, en, weight=weight)

    def _official_sender(self, sender: NumberInfo) -> None:
        owners = self.sender_owners
        brand_id = sender.brand
        if (
            self.signature is not None
            and self.signature.brand_id not in owners
            and not (
                self.directory.brands[self.signature.brand_id].is_public_service
                and self.directory.brands[brand_id].is_public_service
            )
        ):
            self._add(
                "sender_brand_mismatch",
                "scam",
                f"发送号码属于{self._name(brand_id)}，短信却署名{self._name(self.signature.brand_id)}",
                f"The sender number belongs to {self._name(brand_id)}, but the message is signed "
                f"{self._name(self.signature.brand_id)}",
            )
            return
        if self.lenders and not owners.intersection(self.claimed):
            return  # a bank's number quoting another platform: no evidence either way
        verified = sender.official
        caveat_zh = "" if verified else "（该号码来自未经公开来源核实的名单）"
        caveat_en = "" if verified else " (the list entry is not verified by a public source)"
        self._add(
            "official_sender",
            "legit",
            f"发送号码是{self._name(brand_id)}的官方号码{caveat_zh}；但官方号码也可能被伪基站或改号软件冒用，"
            "仍需看内容是否要求转账、验证码或点击链接",
            f"The sender is an official number of {self._name(brand_id)}{caveat_en}; official "
            "numbers can still be spoofed, so the content matters",
            weight=SIGNAL_WEIGHTS["official_sender"] * (1.0 if verified else 0.5),
        )

    def _unlisted_short_sender(self, sender: NumberInfo) -> None:
        if sender.detail == "sms_port_106":
            for brand_id in self.lenders:
                for number in self.directory.official_numbers(brand_id):
                    if number.startswith("95") and (sender.normalized or "").endswith(number):
                        self._add(
                            "official_port_suffix",
                            "legit",
                            f"106短信端口以{self._name(brand_id)}的官方号码{number}结尾（弱证据：端口也可能被租用或伪造）",
                            f"The 106 port ends with {self._name(brand_id)}'s official number "
                            f"{number} (weak evidence: ports can be rented or spoofed)",
                        )
                        return
            return
        if sender.detail in ("95_short", "96_short") and self.signature is not None:
            brand_id = self.signature.brand_id
            if self.directory.official_numbers(brand_id):
                self._add(
                    "sender_not_brand_number",
                    "scam",
                    f"短信署名{self._name(brand_id)}，发送号码{sender.raw}却不是它的官方号码"
                    f"（官方：{'、'.join(self.directory.official_numbers(brand_id)[:2])}）",
                    f"Signed {self._name(brand_id)}, but sent from {sender.raw}, which is not one "
                    "of its official numbers",
                )

    # -- the text -------------------------------------------------------------------------------

    def contact_signals(self) -> None:
        if self.norm is None:
            return
        public = self._public_service_voice()
        for contact in self.contacts:
            # Public services point to each other (a 国家反诈中心 notice gives 96110 and 110).
            if public is not None and not self._belongs_to(
                contact, self.directory.public_service_ids
            ):
                self._add(
                    "public_service_with_link",
                    "scam",
                    f"自称{self._name(public)}的短信里出现了链接或其他号码；真正的12381/96110提醒"
                    "不含链接、不含回拨号码，这条很可能是伪造的",
                    f"A message presenting itself as {self._name(public)} contains a link or "
                    "another number; genuine 12381/96110 warnings never do, so it is likely fake",
                    contact=contact,
                )
            if contact.kind == "phone":
                self._phone_contact(contact)
            else:
                self._link_contact(contact)

    def _public_service_voice(self) -> str | None:
        """The public service the message speaks as (sender or signature), if any."""
        for brand_id in sorted(self.sender_owners):
            if self.directory.brands[brand_id].is_public_service and not self.sender_anomalous:
                return brand_id
        if self.signature and self.directory.brands[self.signature.brand_id].is_public_service:
            return self.signature.brand_id
        return None

    def _belongs_to(self, contact: Contact, brand_ids: Set[str]) -> bool:
        if contact.kind == "phone":
            return bool(self.directory.owners(contact.info) & brand_ids)
        return bool(contact.host and self.directory.domain_owners(contact.host) & brand_ids)

    def _phone_contact(self, contact: Contact) -> None:
        info = contact.info
        if info is None or not self.speaks_as:
            return
        owners = self.directory.owners(info)
        if info.detail == "carrier_100" or (owners and _displayed_normally(info)):
            return
        names = self._brand_list(self.speaks_as[:2])
        official = "、".join(
            n for b in self.speaks_as[:2] for n in self.directory.official_numbers(b)[:2]
        )
        official_zh = (
            f"（官方号码：{official}）"
            if official
            else "（该平台没有核实过的官方号码，请只在官方App内联系）"
        )
        type_zh = _TYPE_ZH.get(info.type, "号码")
        type_en = _TYPE_EN.get(info.type, "a number")
        if self.lenders:
            zh = f"短信自称{names}，让你联系的{type_zh}{contact.raw}却不是它的官方号码{official_zh}"
            en = (
                f"The message claims to be from {names}, but the number it gives ({contact.raw}, "
                f"{type_en}) is not one of its official numbers"
            )
        else:
            zh = (
                f"短信从{names}的官方号码发出，让你联系的{type_zh}{contact.raw}却不是它的官方号码"
                f"{official_zh}；伪基站常冒用官方号码发这种短信"
            )
            en = (
                f"The message comes from an official number of {names}, but the number it gives "
                f"({contact.raw}, {type_en}) is not one of its own: fake base stations spoof "
                "official senders this way"
            )
        self._add("brand_number_mismatch", "scam", zh, en, contact=contact)
        if info.type is NumberType.SERVICE_400:
            self._add(
                "unofficial_400",
                "scam",
                f"400号码{contact.raw}不在{names}的官方名单上",
                f"The 400 number {contact.raw} is not on {names}'s official list",
                contact=contact,
                weight=0.5,
            )

    def _link_contact(self, contact: Contact) -> None:
        host = contact.host or ""
        if valid_ipv4(host):
            self._add(
                "ip_link",
                "scam",
                "链接直接指向一个IP地址，正规平台不会这样发链接",
                "The link points straight at an IP address; real platforms never send such links",
                contact=contact,
            )
        elif host in SHORT_LINK_HOSTS:
            self._add(
                "short_link",
                "scam",
                "短链接隐藏了真实网址，请不要点击",
                "A short link hides where it really goes; do not open it",
                contact=contact,
            )
        owners = self.directory.domain_owners(host) if not valid_ipv4(host) else frozenset()
        imitated = self.directory.lookalike_domain_brand(host) if host else None
        if imitated is not None:
            self._add(
                "lookalike_domain",
                "scam",
                f"网址{host}含有{self._name(imitated)}的名称，但不是它的官方域名，这是常见的仿冒网站",
                f"{host} contains the name of {self._name(imitated)} but is not its domain: a "
                "typical phishing look-alike",
                contact=contact,
            )
        if not self.speaks_as or owners:
            return
        names = self._brand_list(self.speaks_as[:2])
        has_domains = any(self.directory.brands[b].domains for b in self.speaks_as)
        if self.lenders:
            zh = f"短信自称{names}，链接{host}却不是它的官方网址；请只在官方App内操作"
            en = (
                f"The message claims to be from {names}, but the link ({host}) is not one of its "
                "official domains; act only inside the official app"
            )
        else:
            zh = (
                f"短信从{names}的官方号码发出，链接{host}却不是它的官方网址；"
                "伪基站常冒用官方号码发钓鱼链接"
            )
            en = (
                f"The message comes from an official number of {names}, but the link ({host}) is "
                "not one of its domains: fake base stations spoof official senders this way"
            )
        self._add(
            "brand_link_mismatch",
            "scam",
            zh,
            en,
            contact=contact,
            weight=None if has_domains else 1.5,
        )


def _displayed_normally(info: NumberInfo) -> bool:
    """False for listed numbers shown in a way a genuine caller would not use (+86 95188)."""
    return not parse_number(info.raw).anomalous
