"""Masking personal data for logs and agent views (pure)."""

from __future__ import annotations

import logging
import re

COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "令狐", "夏侯", "端木", "西门", "南宫", "独孤", "轩辕", "司徒", "申屠",
})
MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
ID_NUMBER = re.compile(r"(?<![\dXx])(\d{4})(\d{10})(\d{3}[\dXx])(?![\dXx])")


def mask_name(name: str) -> str:
    """Keep the surname only: 张三 -> 张**, 欧阳娜娜 -> 欧阳**."""
    name = name.strip()
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES else name[:1]
    return f"{surname}**"


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678; anything shorter keeps only its last two digits."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 11:
        digits = digits[-11:]
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def mask_id_number(id_number: str) -> str:
    """110101199003074512 -> 1101**********4512."""
    value = id_number.strip()
    return f"{value[:4]}{'*' * (len(value) - 8)}{value[-4:]}" if len(value) > 8 else "*" * len(value)


def mask_text(text: str) -> str:
    """Mask every mainland ID number and mobile number inside free text."""
    text = ID_NUMBER.sub(lambda m: f"{m.group(1)}{'*' * 10}{m.group(3)}", text)
    return MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


class PiiMaskingFilter(logging.Filter):
    """Masks phone and ID numbers in log records before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask_text(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True
