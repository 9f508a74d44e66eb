"""Duplicate groups: which tracks are the same recording, and which copy to keep.

Plain logic over ``Item``s (a catalogued track or a loose file), shared by the library's
``dedup_groups`` asset, the per-track check after ``fingerprint`` and ``music-pipeline
dedup``. Four kinds of evidence link two items:

* ``url``: a canonical source URL in common (every URL form of a YouTube video, a
  SoundCloud or a Spotify track is already one string, see ``identity.canonical_url``);
* ``isrc``: the same ISRC, the industry's id of a recording;
* ``title``: the same normalised artist + title + version (``normalize.parse``). Names
  are weaker evidence than audio: when both items have fingerprints and those disagree,
  the title link is dropped (an album version and a re-recording share a name); without
  fingerprints, durations more than ``TITLE_DURATION_S`` apart veto it;
* ``fingerprint``: Chromaprint similarity after alignment (``fpindex``), found through
  the inverted index, never by comparing all pairs.

Linked items form groups (connected components). Each group's keeper is the best copy by
``KEEPER_RULE``; the reason names the criterion that decided against the runner-up. Two
of its criteria look at the audio rather than at the file, because the file can lie:

* *complete*: a copy cut short at the start is as long, give or take a few per cent, as
  a whole one, so a length ratio misses it. The copies whose fingerprints align are put on
  one timeline at their aligned offsets (``missing_audio``); a copy whose audible span
  (silence at either end not counted) falls short of theirs by more than
  ``COMPLETE_MISSING_S`` is not complete;
* *lossless*: a FLAC or WAV decoded from an MP3 or Ogg holds lossy audio in a bigger
  file. The analysis finds the band limit the lossy encoder left (``audio.bandlimit``);
  such a file (``lossy_origin``) is not lossless, and its bit depth and bitrate say
  nothing, so a lossy file beats it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import fpindex
from .normalize import TrackName

TITLE_DURATION_S = 10.0  # two uploads of one recording rarely differ by more
COMPLETE_RATIO = 0.95  # a copy shorter than 95 % of the group's longest is cut short
# Audio a copy may lack at its start and end together. On the development corpus whole copies
# (MP3, AAC, 22 kHz WAV) measure at most 0.2 s (alignment steps are 0.12 s, silence windows
# 0.05 s); copies cut by 3 s lack 0.7-3.0 s of music (less where the song began with silence).
COMPLETE_MISSING_S = 0.5
KEEPER_RULE = ("complete (at least 95% of the longest copy's audible duration, and lacking at most 0.5 s of "
               "the audio the copies it aligns with hold at the start and end: aligned fingerprint offsets "
               "and durations, silence not counted), then lossless over lossy (a lossless file whose "
               "spectrum has a lossy encoder's band limit is of lossy origin: not lossless), then a lossy "
               "file over a lossless file of lossy origin, then higher bit depth (lossless) or bitrate "
               "(lossy), then higher sample rate, then richer metadata, then the earliest added")
METADATA_FIELDS = ("title", "artist", "album", "isrc", "cover", "release_date", "genre")


@dataclass
class Item:
    """One candidate copy: a catalogued track (``id`` = its key) or a file (``id`` = its path)."""

    id: str
    name: TrackName | None = None
    urls: frozenset[str] = frozenset()
    isrc: str | None = None
    fingerprint: np.ndarray | None = None
    lossless: bool = False
    bits: int | None = None
    bitrate_kbps: float | None = None
    sample_rate: int | None = None
    duration_s: float | None = None
    codec: str | None = None
    cutoff_hz: float | None = None  # the band limit the analysis found in the audio, if any
    lossy_origin: bool = False  # a lossless file holding audio a lossy encoder band-limited
    leading_silence_s: float | None = None  # None: not measured (a track catalogued before it was)
    trailing_silence_s: float | None = None
    metadata: dict = field(default_factory=dict)
    added: str = ""  # sortable: earlier is older
    paths: tuple[str, ...] = ()

    @property
    def printed(self) -> bool:
        """Whether the item has a fingerprint long enough to be evidence."""
        return self.fingerprint is not None and self.fingerprint.size >= fpindex.MIN_ITEMS

    @property
    def true_lossless(self) -> bool:
        return self.lossless and not self.lossy_origin

    @property
    def silence_measured(self) -> bool:
        return self.leading_silence_s is not None and self.trailing_silence_s is not None

    @property
    def audible_s(self) -> float:
        return max(0.0, (self.duration_s or 0.0) - (self.leading_silence_s or 0.0) - (self.trailing_silence_s or 0.0))

    @property
    def richness(self) -> int:
        return sum(1 for name in METADATA_FIELDS if self.metadata.get(name))


@dataclass(frozen=True)
class Evidence:
    a: str
    b: str
    by: str  # url | isrc | title | fingerprint
    detail: str
    score: float | None = None

    def as_dict(self) -> dict:
        data = {"a": self.a, "b": self.b, "by": self.by, "detail": self.detail}
        if self.score is not None:
            data["score"] = round(self.score, 3)
        return data


@dataclass
class Group:
    id: str
    members: list[str]  # keeper first
    keeper: str
    reason: str
    evidence: list[Evidence]
    notes: dict[str, str] = field(default_factory=dict)  # member -> what its audio lacks, if anything

    @property
    def others(self) -> list[str]:
        return [m for m in self.members if m != self.keeper]

    @property
    def matched_by(self) -> list[str]:
        return sorted({e.by for e in self.evidence})


def group_id(member_ids: Sequence[str]) -> str:
    """A short id that is the same whenever the same items are grouped (for `--undo`)."""
    digest = hashlib.sha1("\n".join(sorted(member_ids)).encode()).hexdigest()
    return f"dup-{digest[:10]}"


def find_groups(items: Sequence[Item], threshold: float = fpindex.MATCH_THRESHOLD,
                separated: set[frozenset[str]] | frozenset = frozenset()) -> list[Group]:
    """Group the items that are the same recording; singletons are left out. ``separated``
    holds pairs of ids a user split apart (`dedup --undo`): no evidence links those."""
    links = _Links(len(items), items, separated)
    by_index = {item.id: i for i, item in enumerate(items)}
    aligned: dict[tuple[str, str], tuple[float, int]] = {}  # (a, b) ids -> fpindex.align(a, b), for the keeper

    def fp_score(i: int, j: int) -> float:
        pair = (items[min(i, j)].id, items[max(i, j)].id)
        if pair not in aligned:
            aligned[pair] = fpindex.align(items[min(i, j)].fingerprint, items[max(i, j)].fingerprint)
        return aligned[pair][0]

    for by, keyed in (("url", {i: item.urls for i, item in enumerate(items)}),
                      ("isrc", {i: {item.isrc} for i, item in enumerate(items) if item.isrc})):
        owners: dict[str, int] = {}
        for i, values in keyed.items():
            for value in sorted(values):
                if value in owners and owners[value] != i:
                    links.add(owners[value], i, Evidence(items[owners[value]].id, items[i].id, by, value))
                owners.setdefault(value, i)

    named: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if item.name is not None and item.name.key and item.name.artists:
            named.setdefault(item.name.key, []).append(i)
    for key, indices in named.items():
        first = indices[0]
        for i in indices[1:]:
            a, b = items[first], items[i]
            if a.printed and b.printed:
                if fp_score(first, i) < threshold:
                    continue  # same name, different audio: another recording
            elif a.duration_s and b.duration_s and abs(a.duration_s - b.duration_s) > TITLE_DURATION_S:
                continue
            links.add(first, i, Evidence(a.id, b.id, "title", key))

    printed = [i for i, item in enumerate(items) if item.printed]
    for (p, q), (value, offset) in fpindex.matching_alignments([items[i].fingerprint for i in printed],
                                                               threshold).items():
        i, j = printed[p], printed[q]
        aligned[(items[i].id, items[j].id)] = (value, offset)
        links.add(i, j, Evidence(items[i].id, items[j].id, "fingerprint", f"similarity {value:.3f}", value))

    by_root: dict[int, list[Evidence]] = {}  # each link's evidence to its group, in one pass
    for evidence in links.evidence:
        by_root.setdefault(links.find(by_index[evidence.a]), []).append(evidence)
    groups = []
    for indices in links.components():
        members = [items[i] for i in indices]
        keeper, reason, notes = _judge(members, aligned)
        ids = [keeper.id] + [m.id for m in members if m.id != keeper.id]
        groups.append(Group(group_id(ids), ids, keeper.id, reason, by_root.get(links.find(indices[0]), []), notes))
    return groups


def missing_audio(members: Sequence[Item], threshold: float = fpindex.MATCH_THRESHOLD,
                  aligned: Mapping[tuple[str, str], tuple[float, int]] | None = None
                  ) -> dict[str, tuple[float, float]]:
    """Seconds of audio each member lacks at its start and at its end, against the copies its
    fingerprint aligns with; members that align with no other are left out.

    Aligned copies (score at least ``threshold``) are placed on one timeline by their
    offsets, starting from the longest. A copy's audible span runs from its place plus its
    leading silence to its place plus its duration less its trailing silence (the offset
    comes from the first two minutes the fingerprint covers, the end from the duration);
    what it lacks is how far its span falls short of the union of its cluster's spans.
    Silence is left out so that copies differing only in the silence around the music
    (another rip, another upload) lack nothing; where one copy's silence was not measured,
    no copy's is left out (against 0 s, measured silence would count as missing). ``aligned`` holds alignments already made
    (``fpindex.align`` of the pair of ids), as ``find_groups`` made them while linking.
    """
    aligned = aligned or {}

    def align(a: Item, b: Item) -> tuple[float, int]:
        if (a.id, b.id) in aligned:
            return aligned[(a.id, b.id)]
        if (b.id, a.id) in aligned:  # the other way round: the same offset, negated
            value, offset = aligned[(b.id, a.id)]
            return value, -offset
        return fpindex.align(a.fingerprint, b.fingerprint)

    printed = sorted((m for m in members if m.printed and m.duration_s), key=lambda m: -(m.duration_s or 0.0))
    place: dict[str, float] = {}
    clusters: list[list[Item]] = []
    for root in printed:
        if root.id in place:
            continue
        place[root.id] = 0.0
        cluster = [root]
        for a in cluster:  # grows while it is walked: breadth first over the aligned pairs
            for b in printed:
                if b.id in place:
                    continue
                value, offset = align(a, b)
                if value >= threshold:  # b[j] is a[j - offset]: b starts offset items before a
                    place[b.id] = place[a.id] - offset * fpindex.ITEM_S
                    cluster.append(b)
        clusters.append(cluster)
    missing = {}
    for cluster in clusters:
        if len(cluster) < 2:
            continue
        measured = all(m.silence_measured for m in cluster)
        spans = {m.id: (place[m.id] + (m.leading_silence_s if measured else 0.0),
                        place[m.id] + (m.duration_s or 0.0) - (m.trailing_silence_s if measured else 0.0))
                 for m in cluster}
        first = min(start for start, _ in spans.values())
        last = max(end for _, end in spans.values())
        for member_id, (start, end) in spans.items():
            missing[member_id] = (max(0.0, start - first), max(0.0, last - end))
    return missing


def _rank(item: Item, lengths: dict[str, float], missing: dict[str, tuple[float, float]]) -> tuple:
    gap = missing.get(item.id)
    complete = (bool(item.duration_s) and lengths[item.id] >= COMPLETE_RATIO * max(lengths.values())
                and (gap is None or sum(gap) <= COMPLETE_MISSING_S))
    if item.true_lossless:
        quality = item.bits or 16
    elif item.lossless:  # of lossy origin: its bit depth and bitrate are the container's, not the audio's
        quality = 0.0
    else:
        quality = item.bitrate_kbps or 0.0
    older = tuple(-ord(ch) for ch in item.added) if item.added else ()
    return (complete, item.true_lossless, not item.lossy_origin, quality, item.sample_rate or 0, item.richness,
            older, item.id)


def choose_keeper(members: Sequence[Item]) -> tuple[Item, str]:
    """The best copy by ``KEEPER_RULE`` and why it beat the runner-up."""
    keeper, reason, _notes = _judge(members)
    return keeper, reason


def _judge(members: Sequence[Item], aligned: Mapping[tuple[str, str], tuple[float, int]] | None = None
           ) -> tuple[Item, str, dict[str, str]]:
    """The keeper, why it won, and a note on each member whose audio falls short."""
    measured = all(m.silence_measured for m in members)  # else durations: measured silence would count against
    lengths = {m.id: m.audible_s if measured else m.duration_s or 0.0 for m in members}
    missing = missing_audio(members, aligned=aligned)
    ranked = sorted(members, key=lambda m: _rank(m, lengths, missing), reverse=True)
    keeper, runner_up = ranked[0], ranked[1]
    mine, theirs = _rank(keeper, lengths, missing), _rank(runner_up, lengths, missing)
    if mine[0] != theirs[0]:
        why = f"complete ({_shortfall(keeper, runner_up, missing.get(runner_up.id))})"
    elif mine[1] != theirs[1]:
        why = (f"lossless ({keeper.codec or 'lossless'}) over "
               + (_lossy_origin(runner_up) if runner_up.lossy_origin else f"lossy ({runner_up.codec or 'lossy'})"))
    elif mine[2] != theirs[2]:
        why = f"a lossy file ({keeper.codec or 'lossy'}) over {_lossy_origin(runner_up)}"
    elif mine[3] != theirs[3]:
        why = (f"higher bit depth ({keeper.bits} vs {runner_up.bits or 16} bits)" if keeper.true_lossless
               else f"higher bitrate ({keeper.bitrate_kbps:.0f} vs {runner_up.bitrate_kbps or 0:.0f} kb/s)")
    elif mine[4] != theirs[4]:
        why = f"higher sample rate ({keeper.sample_rate} vs {runner_up.sample_rate or 0} Hz)"
    elif mine[5] != theirs[5]:
        why = f"richer metadata ({keeper.richness} vs {runner_up.richness} fields)"
    else:
        why = "equal copies: the earliest added"
    notes = {}
    for member in members:
        gap = missing.get(member.id)
        remarks = [f"lossy origin: cut off at {(member.cutoff_hz or 0) / 1000:.1f} kHz"] if member.lossy_origin else []
        if gap is not None and sum(gap) > COMPLETE_MISSING_S:
            remarks.append(_lacks(gap))
        if remarks:
            notes[member.id] = "; ".join(remarks)
    return keeper, f"keeper {keeper.id}: {why}", notes


def _shortfall(keeper: Item, runner_up: Item, gap: tuple[float, float] | None) -> str:
    lengths = f"{keeper.duration_s or 0:.1f} s vs {runner_up.duration_s or 0:.1f} s"
    if gap is None or sum(gap) <= COMPLETE_MISSING_S:
        return lengths  # too short a copy overall
    return f"{lengths}: the runner-up {_lacks(gap)}"


def _lacks(gap: tuple[float, float]) -> str:
    parts = [f"{seconds:.1f} s at the {end}" for seconds, end in zip(gap, ("start", "end"), strict=True)
             if seconds >= 0.05]
    return f"lacks {' and '.join(parts)}"


def _lossy_origin(item: Item) -> str:
    cutoff = f", cut off at {item.cutoff_hz / 1000:.1f} kHz" if item.cutoff_hz else ""
    return f"a lossless file of lossy origin ({item.codec or 'lossless'}{cutoff})"


class _Links:
    """Union-find with the evidence of every link."""

    def __init__(self, n: int, items: Sequence[Item], separated: set[frozenset[str]] | frozenset) -> None:
        self.parent = list(range(n))
        self.evidence: list[Evidence] = []
        self.items = items
        self.separated = separated
        self.members = {i: [i] for i in range(n)}  # root -> its component (kept only to honour separated)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def add(self, i: int, j: int, evidence: Evidence) -> None:
        """Link i and j, unless that would put a separated pair in one group, directly or
        through a third item (an undone group stays apart whatever joins it later)."""
        ri, rj = self.find(i), self.find(j)
        if self.separated and ri != rj and any(
                frozenset((self.items[a].id, self.items[b].id)) in self.separated
                for a in self.members[ri] for b in self.members[rj]):
            return
        if ri != rj:
            self.parent[ri] = rj
            self.members[rj] += self.members.pop(ri)
        self.evidence.append(evidence)

    def components(self) -> list[list[int]]:
        members: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            members.setdefault(self.find(i), []).append(i)
        return [m for m in members.values() if len(m) > 1]
