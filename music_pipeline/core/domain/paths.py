"""Library layout: path templates and file names that are safe on macOS, Windows and Linux.

A library folder is often on an exFAT USB stick or a NAS share read by all three systems
and by DJ hardware, so names are held to the strictest rules of the three: no reserved
device names (CON, NUL, COM1...), none of ``<>:"/\\|?*`` or control characters, no
trailing dots or spaces, at most 200 UTF-8 bytes per component. Unicode letters are kept
(NFC-normalised, so the same title never becomes two folders on macOS).
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DEFAULT_TEMPLATE = "$format/$artist/$artist - $title"

#: Format name (the ``$format`` folder) -> file extension.
FORMATS: dict[str, str] = {"ALAC": "m4a", "AIFF": "aiff", "WAV": "wav"}

MAX_COMPONENT_BYTES = 200
MAX_RELATIVE_CHARS = 220
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f\u0080-\u009f\u200b-\u200f\u2028-\u202e\ufeff]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.I)
_SPACES = re.compile(r"\s+")


def sanitize_component(text: str | None, fallback: str = "Unknown") -> str:
    """One path component (folder or file stem) that every OS accepts and that cannot escape."""
    name = unicodedata.normalize("NFC", text or "")
    name = _FORBIDDEN.sub(_replacement, name)
    name = _SPACES.sub(" ", name).strip()
    name = name.lstrip(".").rstrip(". ")  # no "..", no hidden files, no Windows trailing dot
    name = truncate_utf8(name, MAX_COMPONENT_BYTES).rstrip(". ")
    if not name:
        return fallback
    if _RESERVED.match(name):
        name = f"{name}_"
    return name


def _replacement(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in '/\\|':
        return "-"
    if char == ":":
        return " -"
    if char in "<>":
        return ""
    if char == '"':
        return "'"
    return "" if char in "?*" else " "


def truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    cut = encoded[:limit].decode("utf-8", errors="ignore")
    # Do not leave a combining mark without its base character.
    while cut and unicodedata.combining(cut[-1]):
        cut = cut[:-1]
    return cut


class TemplateError(ValueError):
    """A path template that cannot produce a path inside the library."""


@dataclass(frozen=True)
class Layout:
    """Where each format of a track goes under the library root.

    ``templates`` maps a format name to a ``string.Template`` (beets-style ``$field``)
    relative to the root, without the extension; ``default`` serves every other format.
    Fields: $format, $artist, $title, $album, $key (partition key), $bpm, $camelot.
    """

    root: Path
    default: str = DEFAULT_TEMPLATE
    templates: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for text in (self.default, *self.templates.values()):
            validate_template(text)

    def path_for(self, fmt: str, fields: dict[str, object], suffix: str = "") -> Path:
        """The absolute path of ``fmt`` for a track; ``suffix`` disambiguates name clashes."""
        template = string.Template(self.templates.get(fmt, self.default))
        values = {name: sanitize_component(_text(value)) for name, value in fields.items()}
        values["format"] = fmt
        rendered = template.safe_substitute(values)
        parts = [sanitize_component(part) for part in PurePosixPath(rendered).parts if part not in ("/", "")]
        ending = (f" {suffix}" if suffix else "") + "." + FORMATS[fmt]
        # Cut the stem, never the suffix or extension: a suffix cut off would make two tracks
        # share a name again. The whole relative path stays under MAX_RELATIVE_CHARS so the
        # library still fits Windows' 260-character paths when copied under a short root.
        room = min(MAX_COMPONENT_BYTES - len(ending.encode()),
                   MAX_RELATIVE_CHARS - len("/".join(parts[:-1])) - 1 - len(ending))
        stem = truncate_utf8(parts[-1], max(room, 16)).rstrip(". ")
        parts[-1] = (stem or "Unknown") + ending
        path = self.root.joinpath(*parts)
        if not is_within(path, self.root):  # unreachable after sanitising; kept as a guard
            raise TemplateError(f"template for {fmt} leaves the library: {path}")
        return path


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return str(value)


def validate_template(text: str) -> None:
    try:
        fields = {name for _, name, braced, _ in string.Template.pattern.findall(text) for name in (name or braced,) if name}
    except ValueError as err:  # pragma: no cover - findall does not raise on text
        raise TemplateError(str(err)) from err
    unknown = fields - {"format", "artist", "title", "album", "key", "bpm", "camelot"}
    if unknown:
        raise TemplateError(f"unknown field(s) in path template {text!r}: {', '.join(sorted(unknown))}")
    if "$title" not in text and "${title}" not in text and "$key" not in text and "${key}" not in text:
        raise TemplateError(f"path template {text!r} needs $title or $key, or every track would share a file")
    if text.startswith("/") or text.startswith("\\"):
        raise TemplateError(f"path template {text!r} must be relative to the library root")


def is_within(path: Path, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True
