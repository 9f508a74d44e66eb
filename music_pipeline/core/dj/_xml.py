"""What both XML exports share: text made safe for XML 1.0, and deterministic bytes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

# XML 1.0 has no way to write C0 controls other than tab, newline and carriage return, lone
# surrogates (a file name that is not UTF-8) or U+FFFE/U+FFFF, not even as character
# references: one in a title would make the whole file unreadable, so it goes.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text(value: object) -> str:
    """``value`` as an attribute value any XML reader accepts (None is empty)."""
    return "" if value is None else _NOT_XML.sub("", str(value))


def to_bytes(root: ET.Element, declaration: str, short_empty: bool = True) -> bytes:
    """``root`` indented, in UTF-8, after ``declaration`` (each format's own, as its program
    writes it; ``short_empty`` False writes ``<X></X>`` as Traktor does). ElementTree escapes
    every attribute and keeps attributes in the order set, so the same tree gives the same bytes."""
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="utf-8", short_empty_elements=short_empty)
    return declaration.encode() + b"\n" + body + b"\n"
