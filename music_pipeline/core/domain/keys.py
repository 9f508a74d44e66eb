"""Musical keys and the notations DJs use: canonical ("F# minor"), classic ("F#m"), Camelot
("11A") and Open Key ("4m").

Camelot: 8B = C major, 8A = A minor, one step clockwise is a fifth up; a major key and its
relative minor share the number. Open Key: 1d = C major, 1m = A minor, same wheel shifted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, 0 = C
    minor: bool

    @property
    def name(self) -> str:
        """Canonical spelling: "F# minor", "Bb major" (the spelling with the fewest accidentals)."""
        names = _MINOR_NAMES if self.minor else _MAJOR_NAMES
        return f"{names[self.tonic]} {'minor' if self.minor else 'major'}"

    @property
    def short(self) -> str:
        """Classic notation, as in ID3 TKEY: "F#m", "Bb"."""
        names = _MINOR_NAMES if self.minor else _MAJOR_NAMES
        return names[self.tonic] + ("m" if self.minor else "")

    @property
    def _fifths(self) -> int:
        """Position on the circle of fifths of the key (or its relative major), C = 0."""
        major_tonic = (self.tonic + 3) % 12 if self.minor else self.tonic
        return (7 * major_tonic) % 12

    @property
    def camelot(self) -> str:
        return f"{(self._fifths + 7) % 12 + 1}{'A' if self.minor else 'B'}"

    @property
    def open_key(self) -> str:
        return f"{self._fifths + 1}{'m' if self.minor else 'd'}"

    @classmethod
    def parse(cls, text: str) -> Key:
        """Read "F# minor", "F#m", "Gbm", "a:minor", "Bb", "B-flat major", "8A" or "1d"."""
        raw = text.strip()
        compact = raw.replace(" ", "").upper().lstrip("0")  # "05A", "11 A"
        for key in ALL_KEYS:
            if compact in (key.camelot, key.open_key.upper()):
                return key
        match = re.fullmatch(
            r"([A-Ga-g])\s*(#|♯|b|♭|-?sharp|-?flat)?\s*[: ]?\s*((?i:major|maj|minor|min)|m|M)?", raw)
        if not match:
            raise ValueError(f"not a key: {text!r}")
        letter, accidental, mode = match.groups()
        tonic = _PITCH[letter.upper()]
        accidental = (accidental or "").lower().lstrip("-")
        if accidental in ("#", "♯", "sharp"):
            tonic += 1
        elif accidental in ("b", "♭", "flat"):
            tonic -= 1
        minor = bool(mode) and (mode == "m" or mode.lower() in ("minor", "min"))  # "CM" is C major
        if not mode and letter.islower():  # "a" is A minor in the MIREX convention
            minor = True
        return cls(tonic % 12, minor)


ALL_KEYS = [Key(tonic, minor) for minor in (False, True) for tonic in range(12)]
