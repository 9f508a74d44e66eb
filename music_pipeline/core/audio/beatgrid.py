"""The beat grid a DJ mixes on: tempo to 0.01 BPM, the first beat to the millisecond, the
downbeat and the bar, as DJ software stores it (rekordbox's TEMPO markers, Traktor's grid
marker, Serato's BeatGrid).

A grid is one or more segments; each starts on a beat, runs at a constant tempo until the
next segment's start, and knows where that beat falls in its bar. A steady track has one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    start_s: float  # a beat: where this segment's grid begins
    bpm: float  # to 0.01
    beat: int = 1  # that beat's place in its bar, 1..beats_per_bar (1: a downbeat)


@dataclass(frozen=True)
class Grid:
    segments: tuple[Segment, ...]
    beats_per_bar: int = 4
    confidence: float = 0.0  # 0..1
    needs_look: bool = False  # the tempo drifts or changes where no segment could be proven
    end_s: float | None = None  # where the track ends: how long the last segment runs

    @property
    def bpm(self) -> float:
        """The main tempo: the segment covering the most beats' time (the first if one)."""
        return self.segments[0].bpm if len(self.segments) == 1 else self._longest().bpm

    @property
    def first_beat_s(self) -> float:
        return self.segments[0].start_s

    @property
    def downbeat_s(self) -> float:
        """The first downbeat (beat 1 of a bar) at or after the first beat."""
        first = self.segments[0]
        return first.start_s + ((1 - first.beat) % self.beats_per_bar) * 60.0 / first.bpm

    def marker_s(self, index: int) -> float:
        """Where DJ software wants segment ``index``'s grid marker: its first downbeat (Serato
        and Traktor take every marker for beat 1 of a bar), or its start when the segment
        ends before it reaches one (its tempo matters more than its bars)."""
        segment = self.segments[index]
        downbeat = segment.start_s + ((1 - segment.beat) % self.beats_per_bar) * 60.0 / segment.bpm
        inside = index + 1 == len(self.segments) or downbeat < self.segments[index + 1].start_s - 1e-6
        return downbeat if inside else segment.start_s

    def _longest(self) -> Segment:
        last = self.end_s if self.end_s is not None else self.segments[-1].start_s  # unknown: counts for nothing
        ends = [s.start_s for s in self.segments[1:]] + [max(last, self.segments[-1].start_s)]
        spans = [end - s.start_s for s, end in zip(self.segments, ends, strict=True)]
        return self.segments[max(range(len(spans)), key=lambda i: spans[i])]

    def beats(self, until_s: float) -> list[tuple[float, int]]:
        """Every (time, place in bar) of the grid up to ``until_s``."""
        out: list[tuple[float, int]] = []
        ends = [s.start_s for s in self.segments[1:]] + [until_s]
        for segment, end in zip(self.segments, ends, strict=True):
            period = 60.0 / segment.bpm
            n = 0
            while (t := segment.start_s + n * period) < min(end, until_s) - 1e-9:
                out.append((t, (segment.beat - 1 + n) % self.beats_per_bar + 1))
                n += 1
        return out

    def as_dict(self) -> dict:
        return {"bpm": self.bpm, "first_beat_s": self.first_beat_s, "downbeat_s": round(self.downbeat_s, 4),
                "beats_per_bar": self.beats_per_bar, "confidence": self.confidence, "needs_look": self.needs_look,
                "segments": [[s.start_s, s.bpm, s.beat] for s in self.segments], "end_s": self.end_s}

    @classmethod
    def from_dict(cls, data: dict) -> Grid:
        return cls(tuple(Segment(float(a), float(b), int(c)) for a, b, c in data["segments"]),
                   int(data.get("beats_per_bar", 4)), float(data.get("confidence", 0.0)),
                   bool(data.get("needs_look", False)), data.get("end_s"))


@dataclass(frozen=True)
class Cue:
    """A cue point: the memory cue (``number`` -1) or a hot cue (0-7), with a name and a colour."""

    start_s: float
    name: str
    number: int = -1
    colour: tuple[int, int, int] = (40, 226, 20)  # rekordbox's default green

    def as_row(self) -> list:
        """As the catalog stores it: ``[start_s, name, number, [r, g, b]]``."""
        return [self.start_s, self.name, self.number, list(self.colour)]

    @classmethod
    def from_row(cls, row: list) -> Cue:
        start, name, number, colour = row
        return cls(float(start), str(name), int(number), (int(colour[0]), int(colour[1]), int(colour[2])))


def from_catalog(grid: dict | None, cues: list | None) -> tuple[Grid | None, tuple[Cue, ...]]:
    """A track's grid and cues as the catalog stores them (``Grid.as_dict``, ``Cue.as_row``)."""
    return (Grid.from_dict(grid) if grid else None), tuple(Cue.from_row(c) for c in cues or [])
