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
``KEEPER_RULE``; the reason names the criterion that decided against the runner-up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import fpindex
from .normalize import TrackName

TITLE_DURATION_S = 10.0  # two uploads of one recording rarely differ by more
COMPLETE_RATIO = 0.95  # a copy shorter than 95 % of the group's longest is cut short
KEEPER_RULE = ("complete duration (within 5% of the longest copy), then lossless over lossy, then higher "
               "bit depth (lossless) or bitrate (lossy), then higher sample rate, then richer metadata, "
               "then the earliest added")
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
    metadata: dict = field(default_factory=dict)
    added: str = ""  # sortable: earlier is older
    paths: tuple[str, ...] = ()

    @property
    def printed(self) -> bool:
        """Whether the item has a fingerprint long enough to be evidence."""
        return self.fingerprint is not None and self.fingerprint.size >= fpindex.MIN_ITEMS

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
    scores: dict[tuple[int, int], float] = {}

    def fp_score(i: int, j: int) -> float:
        pair = (min(i, j), max(i, j))
        if pair not in scores:
            scores[pair] = fpindex.score(items[pair[0]].fingerprint, items[pair[1]].fingerprint)
        return scores[pair]

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
    for (p, q), value in fpindex.matching_pairs([items[i].fingerprint for i in printed], threshold).items():
        i, j = printed[p], printed[q]
        scores[(i, j)] = value
        links.add(i, j, Evidence(items[i].id, items[j].id, "fingerprint", f"similarity {value:.3f}", value))

    by_root: dict[int, list[Evidence]] = {}  # each link's evidence to its group, in one pass
    for evidence in links.evidence:
        by_root.setdefault(links.find(by_index[evidence.a]), []).append(evidence)
    groups = []
    for indices in links.components():
        members = [items[i] for i in indices]
        keeper, reason = choose_keeper(members)
        ids = [keeper.id] + [m.id for m in members if m.id != keeper.id]
        groups.append(Group(group_id(ids), ids, keeper.id, reason, by_root.get(links.find(indices[0]), [])))
    return groups


def _rank(item: Item, longest: float) -> tuple:
    complete = bool(item.duration_s) and item.duration_s >= COMPLETE_RATIO * longest
    quality = (item.bits or 16) if item.lossless else (item.bitrate_kbps or 0.0)
    older = tuple(-ord(ch) for ch in item.added) if item.added else ()
    return (complete, item.lossless, quality, item.sample_rate or 0, item.richness, older, item.id)


def choose_keeper(members: Sequence[Item]) -> tuple[Item, str]:
    """The best copy by ``KEEPER_RULE`` and why it beat the runner-up."""
    longest = max((m.duration_s or 0.0) for m in members)
    ranked = sorted(members, key=lambda m: _rank(m, longest), reverse=True)
    keeper, runner_up = ranked[0], ranked[1]
    mine, theirs = _rank(keeper, longest), _rank(runner_up, longest)
    if mine[0] != theirs[0]:
        why = f"complete ({keeper.duration_s:.1f} s vs {runner_up.duration_s or 0:.1f} s)"
    elif mine[1] != theirs[1]:
        why = f"lossless ({keeper.codec or 'lossless'}) over lossy ({runner_up.codec or 'lossy'})"
    elif mine[2] != theirs[2]:
        why = (f"higher bit depth ({keeper.bits} vs {runner_up.bits or 16} bits)" if keeper.lossless
               else f"higher bitrate ({keeper.bitrate_kbps:.0f} vs {runner_up.bitrate_kbps or 0:.0f} kb/s)")
    elif mine[3] != theirs[3]:
        why = f"higher sample rate ({keeper.sample_rate} vs {runner_up.sample_rate or 0} Hz)"
    elif mine[4] != theirs[4]:
        why = f"richer metadata ({keeper.richness} vs {runner_up.richness} fields)"
    else:
        why = "equal copies: the earliest added"
    return keeper, f"keeper {keeper.id}: {why}"


class _Links:
    """Union-find with the evidence of every link."""

    def __init__(self, n: int, items: Sequence[Item], separated: set[frozenset[str]] | frozenset) -> None:
        self.parent = list(range(n))
        self.evidence: list[Evidence] = []
        self.items = items
        self.separated = separated

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def add(self, i: int, j: int, evidence: Evidence) -> None:
        if self.separated and frozenset((self.items[i].id, self.items[j].id)) in self.separated:
            return
        self.parent[self.find(i)] = self.find(j)
        self.evidence.append(evidence)

    def components(self) -> list[list[int]]:
        members: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            members.setdefault(self.find(i), []).append(i)
        return [m for m in members.values() if len(m) > 1]
