"""Text files people export from Excel and banks' systems: UTF-8 (with or without a BOM), or
GBK/GB18030 as Chinese Windows writes it."""

from __future__ import annotations


class NotText(ValueError):
    """Bytes that are neither UTF-8 nor GBK text."""


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM optional), else GBK/GB18030; :class:`NotText` for anything else."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise NotText("the file is neither UTF-8 nor GBK text") from exc
