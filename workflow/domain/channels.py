"""Purchase channels as clerks and platform exports name them: the one resolver.

A clerk types a channel's code (``ygh``), its name in the policy (``粤工惠购平台``) or a common
Chinese name (``粤工惠购``, ``832平台``); a platform export writes its own name. Every entry path
(the CLI, the web form, the API and the purchase import) turns that text into the channel's code
here, and nowhere else. Whether the code is one the round accepts is a rule
(``purchase.unknown_channel``), decided by the use case, not by this module: text that names no
channel is returned as typed so that the refusal can quote it.

Pure: stdlib and the policy's ``Channel`` only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from workflow.domain.policy import Channel

#: Channel names as they appear in exports and in Annex 1 / Annex 2 → channel code. Follows
#: policy/platforms.csv of 粤工总〔2021〕17号; the policy's own channel names are added to it.
CHANNEL_ALIASES: dict[str, str] = {
    "粤工惠购": "ygh",
    "粤工惠购平台": "ygh",
    "乡村振兴全国消费帮扶广东馆": "gdg",
    "全国消费扶贫广东馆": "gdg",
    "广东馆": "gdg",
    "广东东西部扶贫协作产品交易网": "dxb",
    "东西部扶贫协作产品交易网": "dxb",
    "832平台": "p832",
    "832": "p832",
    "脱贫地区农副产品网络销售平台": "p832",
    "东西优选网": "dxyx",
    "东西优选": "dxyx",
    "广州帮扶馆": "gzbf",
    "广东南粤分享汇消费帮扶专区": "nyfx",
    "南粤分享汇": "nyfx",
    "南方优品消费协作馆": "nfyp",
    "南方优品": "nfyp",
    "各地消费帮扶专馆": "local_hall",
    "消费帮扶专馆": "local_hall",
    "对口帮扶点": "counterpart",
    "各单位对口帮扶点": "counterpart",
    "其他": "other",
    "其他采购渠道": "other",
    "其他采购渠道(含线上和线下)": "other",
}


def name_key(text: str) -> str:
    """How two spellings of a name are compared: NFKC (full-width brackets and digits become
    ASCII), without spaces, lower case. ``粤工惠购 平台``, ``粤工惠购平台`` and ``YGH`` ~ ``ygh``."""
    text = unicodedata.normalize("NFKC", text).replace("\u3000", " ").replace("\xa0", " ")
    return re.sub(r"\s", "", text).lower()


def alias_table(channels: Iterable[Channel] | None = None) -> dict[str, str]:
    """Name key → code. With the round's ``channels``: their codes, their policy names and the
    common names of :data:`CHANNEL_ALIASES` that lead to one of them. Without: every common name
    and every code the common names lead to (a parser that has no policy at hand)."""
    if channels is None:
        table = {name_key(code): code for code in CHANNEL_ALIASES.values()}
        table.update({name_key(name): code for name, code in CHANNEL_ALIASES.items()})
        return table
    known = list(channels)
    codes = {c.code for c in known}
    table = {name_key(name): code for name, code in CHANNEL_ALIASES.items() if code in codes}
    for c in known:
        table[name_key(c.name)] = c.code
    for c in known:
        table[name_key(c.code)] = c.code
    return table


def resolve(text: str, table: Mapping[str, str]) -> str:
    """The code ``text`` names in ``table`` (:func:`alias_table`), or ``text`` stripped when it
    names none (the unknown-channel rule then quotes it)."""
    typed = text.strip()
    return table.get(name_key(typed), typed)


def resolve_channel(channels: Iterable[Channel], text: str) -> str:
    """A channel as a clerk names it → the round's code for it (or the text, stripped)."""
    return resolve(text, alias_table(channels))


__all__ = ["CHANNEL_ALIASES", "alias_table", "name_key", "resolve", "resolve_channel"]
