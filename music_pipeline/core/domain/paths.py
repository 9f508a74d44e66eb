"""Library layout: path templates and file names that are safe on macOS, Windows and Linux.

A library folder is often on an exFAT USB stick or a NAS share read by all three systems
and by DJ hardware, so names are held to the strictest rules of the three: no reserved
device names (CON, NUL, COM1..., also with an extension), none of ``<>:"/\\|?*`` or control
characters, no trailing dots or spaces, at most 200 UTF-8 bytes per component and 220
characters per path relative to the library root. Unicode letters are kept (NFC-normalised,
so the same title never becomes two folders on macOS).
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
#: Every path inside the library, relative to its root, in UTF-16 code units (what Windows
#: counts): a copy under a root of up to 40 characters still fits Windows' 260.
MAX_RELATIVE_CHARS = 220
#: What the folders leave for the file name when they must be cut. Folder caps depend on
#: the template alone, never on the file name, so all of an artist's tracks share one folder.
FILE_NAME_ROOM = 80
#: No field or folder is cut below this while another can still give way.
MIN_FIELD_CHARS = 8
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f\u0080-\u009f\u200b-\u200f\u2028-\u202e\ufeff]')
#: A Windows device name: alone, or followed by spaces and/or any extension ("NUL.txt",
#: "com1 .mp3"), in any case; recent Windows adds COM/LPT with superscript digits.
_RESERVED = re.compile(r"^(?:con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])(?= *(?:\.|$))", re.I)
_SPACES = re.compile(r"\s+")


def sanitize_component(text: str | None, fallback: str = "Unknown") -> str:
    """One path component (folder or file stem) that every OS accepts and that cannot escape."""
    name = unicodedata.normalize("NFC", text or "")
    name = _FORBIDDEN.sub(_replacement, name)
    name = _SPACES.sub(" ", name).strip()
    name = name.lstrip(".").rstrip(". ")  # no "..", no hidden files, no Windows trailing dot
    return shorten(name, MAX_COMPONENT_BYTES, fallback=fallback)


def unreserved(name: str) -> str:
    """``name`` unless Windows takes it for a device: then "_" goes right after the device
    word ("NUL.txt" -> "NUL_.txt"); at the end it would still leave NUL with an extension."""
    match = _RESERVED.match(name)
    return f"{name[:match.end()]}_{name[match.end():]}" if match else name


def path_chars(text: str) -> int:
    """Length as Windows counts it against its path limit: UTF-16 code units."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def shorten(text: str, chars: int, nbytes: int = MAX_COMPONENT_BYTES, fallback: str = "Unknown") -> str:
    """``text`` cut to ``chars`` (UTF-16 units) and ``nbytes`` (UTF-8), on a character
    boundary, with no trailing dot or space and never a device name. A cut can end on
    "CON" or a dot, so the Windows rules are applied after it, not before."""
    name = _cut(text, chars, nbytes)
    if _RESERVED.match(name):  # one character less, so the "_" fits too
        name = unreserved(_cut(name, chars - 1, nbytes - 1))
    return name or fallback


def _cut(text: str, chars: int, nbytes: int) -> str:
    name = truncate_utf8(text, nbytes)
    if path_chars(name) > chars:
        count = 0
        for index, char in enumerate(name):
            count += 2 if ord(char) > 0xFFFF else 1
            if count > chars:
                name = _drop_combining(name[:index])
                break
    return name.rstrip(". ")


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
    return _drop_combining(encoded[:limit].decode("utf-8", errors="ignore"))


def _drop_combining(cut: str) -> str:
    """Do not leave a combining mark without its base character."""
    while cut and unicodedata.combining(cut[-1]):
        cut = cut[:-1]
    return cut


def template_fields(text: str) -> set[str]:
    """The ``$field`` / ``${field}`` names used in a template."""
    return {name or braced for _, name, braced, _ in string.Template.pattern.findall(text) if name or braced}


def render_name(template: str, values: dict[str, str], chars: int, nbytes: int = MAX_COMPONENT_BYTES) -> str:
    """A file name stem from ``template`` within ``chars``/``nbytes``.

    When it is too long, every field is held to one common length, the largest that fits
    (the longest give way first), so "<very long artist> - <title>" keeps a part of both
    instead of losing the title, and with it what tells two tracks apart.
    """
    used = sorted(template_fields(template) & set(values))

    def render(cap: int | None = None) -> str:
        capped = values if cap is None else {**values, **{name: shorten(values[name], cap, fallback="")
                                                          for name in used}}
        return sanitize_component(string.Template(template).safe_substitute(capped))

    def fits(name: str) -> bool:
        return path_chars(name) <= chars and len(name.encode()) <= nbytes

    name = render()
    if not fits(name) and used:
        low, high = MIN_FIELD_CHARS, max(path_chars(values[name]) for name in used)
        while low < high:  # the largest common length that fits, by bisection
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(render(middle)) else (low, middle - 1)
        name = render(low)
    return shorten(name, chars, nbytes)


def folder_caps(parts: list[str], room: int) -> list[int]:
    """The most characters each folder rendered from ``parts`` (templates) may keep so that
    together, with their separators, they fit in ``room``: fixed folders (no field but
    $format) keep theirs, the others share the rest equally. It depends on the templates
    alone, so one artist's folder is cut the same way whatever the album or title.
    TemplateError when the fixed folders leave too little."""
    fixed = [not (template_fields(part) - {"format"}) for part in parts]
    fixed_chars = sum(path_chars(part.replace("${format}", "ALAC").replace("$format", "ALAC"))
                      for part, is_fixed in zip(parts, fixed, strict=True) if is_fixed)
    left = room - max(len(parts) - 1, 0) - fixed_chars
    variable = fixed.count(False)
    share = left // variable if variable else left
    if share < (MIN_FIELD_CHARS if variable else 0):
        raise TemplateError(f"the folders {'/'.join(parts)!r} are too long to leave room for file names "
                            f"within {MAX_RELATIVE_CHARS} characters")
    return [MAX_COMPONENT_BYTES if is_fixed else share for is_fixed in fixed]


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
        """The absolute path of ``fmt`` for a track; ``suffix`` disambiguates name clashes.

        The path relative to the root stays within MAX_RELATIVE_CHARS so the library
        still fits Windows' 260 characters when copied under a short root. Folders keep at
        most their share (set by the template alone, so an artist keeps one folder whatever
        the titles), the file name's stem takes the rest, and the suffix and extension are
        never cut (a suffix cut off would make two tracks share a name again).
        """
        template = self.templates.get(fmt, self.default)
        values = {name: sanitize_component(_text(value)) for name, value in fields.items()}
        values["format"] = fmt
        *folder_parts, file_part = [part for part in PurePosixPath(template).parts if part not in ("/", "")]
        folders = [sanitize_component(string.Template(part).safe_substitute(values)) for part in folder_parts]
        ending = (f" {suffix}" if suffix else "") + "." + FORMATS[fmt]
        room = MAX_RELATIVE_CHARS - FILE_NAME_ROOM - 1
        if FILE_NAME_ROOM - path_chars(ending) < MIN_FIELD_CHARS:  # a long suffix: the folders give way
            room = MAX_RELATIVE_CHARS - MIN_FIELD_CHARS - path_chars(ending) - 1
        folders = [shorten(folder, cap) for folder, cap in zip(folders, folder_caps(folder_parts, room), strict=True)]
        left = MAX_RELATIVE_CHARS - sum(path_chars(folder) + 1 for folder in folders) - path_chars(ending)
        if left < 1:  # only fixed folders longer once sanitised than written can get here
            raise TemplateError(f"template for {fmt} leaves no room for a file name")
        stem = render_name(file_part, values, left, MAX_COMPONENT_BYTES - len(ending.encode()))
        path = self.root.joinpath(*folders, stem + ending)
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
    folder_caps([part for part in PurePosixPath(text).parts if part not in ("/", "")][:-1],
                MAX_RELATIVE_CHARS - FILE_NAME_ROOM - 1)


def is_within(path: Path, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True
