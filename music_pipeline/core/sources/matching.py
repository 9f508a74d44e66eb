"""Matching a Spotify track to a downloadable YouTube upload.

Spotify audio is DRM-protected, so every liked track is searched on YouTube and the best
upload is downloaded instead. The failure users of tools like spotDL complain about most
is a confident *wrong version* (the nightcore edit, the live take, the lyric video of a
cover). So this module never hides its decision: every candidate gets a score with
human-readable reasons, the runners-up are kept, and anything doubtful ends in
``needs_review`` (a user then pins the right URL) instead of a confident wrong download.

Search: ``queries`` puts the quoted ISRC first (uploads whose description carries the
ISRC are the exact recording), then "Artists - Title" and "Main artist - Title".
``match`` runs them in order and stops as soon as one gives a confident match.

Scoring rule (``score``); both sides go through ``normalize.parse``, so "Official Video",
"Lyrics", "- Topic", "VEVO", "feat. X" never count, and versions are compared as versions:

* **Similarity**, ``0.5 * title + 0.5 * artist`` (each 0..1). Title and artist weigh the
  same: the right title by the wrong artist is as wrong as a wrong title by the right
  artist, and with equal weights either one alone tops out at 0.5 + 0.5 * (its
  resemblance), under ``THRESHOLD`` unless the names are near-identical.

  - title: difflib ``SequenceMatcher`` ratio of the folded core titles. If all the words
    of one title appear, in order, in the other, 0.9 at least: the extra words are
    decoration ``normalize`` does not know ("Directed by Cole Bennett", a romanised
    title) or, rarely, another song ("Hello" vs "Hello Again"), which the duration
    usually tells apart, hence not 1.0. YouTube titles also come as "Title - Artist":
    that reading is tried too and the better one counts.
  - artist: the best of the Spotify main artists (a featured artist counts x0.8): 1.0
    when the name is a whole-word part of an artist the upload names (title, "A & B",
    or the channel, "ArtistVEVO", "Artist - Topic") or of the upload's title (it is then
    removed from the title before the titles are compared) or equal to it without
    spaces and a leading "The" ("DaftPunk", "Weeknd"); otherwise only half the
    ``SequenceMatcher`` ratio of the names: after folding, a merely similar name is more
    often another artist than a typo ("Adele" / "Adelen"). A name in another script than
    the upload's ("Дима Билан" / "Dima Bilan", "סטטיק ובן אל" / "Static & Ben El") is
    compared through ``normalize.romanize``: equal romanisations count 1.0; equal consonant
    skeletons (``normalize.consonants``, at least 4 letters) 0.9, since Hebrew leaves vowels
    unwritten and Greek ones romanise several ways ("Έλενα" / "Helena"). Within one script
    the skeleton is never used: there it would only join different artists.
* **Duration**, ``-0.015`` per second of difference up to ``MAX_DURATION_DIFF_S`` (7 s:
  -0.105 at most: YouTube rounds to the second, uploads have a little silence); beyond it
  ``-0.3`` and the candidate is *rejected*: ``choose`` ranks it after every confident
  candidate within the limit, and if it is still the best, the match needs review. An unknown
  duration costs ``-0.1``: nothing verifies the recording.
* **Versions** (remix with remixer, live, acoustic, extended mix, radio edit, slowed,
  sped up, nightcore, instrumental, cover, karaoke, 8d, ...): each version the upload has
  and Spotify's title doesn't, and each one Spotify's title has and the upload lacks,
  costs ``-0.3`` (different audio); a remix by a different remixer costs ``-0.3`` once.
  "Radio edit" and "extended mix" cost ``-0.15``: the same recording cut to another
  length, which the duration already judges. Besides ``parse``'s versions, a few
  unambiguous words anywhere in the upload's title or channel count (a "Nightcore"
  channel, "blinding lights slowed reverb" without brackets) unless the Spotify title or
  artists say them too. Sound-alike covers count as "cover" however they say it ("Made
  Famous by X", "In the Style of X", "Originally Performed by X", "Tribute", a karaoke or
  sound-alike label as channel: Ameritz, Sing King, Party Tyme, KaraFun, The Hit Crew):
  they name the Spotify artist, so title and artist alone would accept them. "(just X)" or
  "(without X)" naming (part of) an artist is the "solo" version.
* **Credits** (``_credit_gap``), ``-0.3`` once, like a version: the artist score takes the
  best Spotify artist, so an upload missing a co-artist scores as well as the full credit.
  That is normal (a Topic channel or an official upload naming only the main artist, a
  co-artist Spotify lists without "feat." left out of the title), so it costs only when the
  upload *names* another credit: (a) its title credits featured artists ("ft. X") and one
  of them is not on Spotify's list, or one Spotify artist appears nowhere in the upload
  (title, channel, any script): another version (the "ft. Justin Bieber" remix of
  Despacito); (b) Spotify's own title features an artist ("(feat. X)", "(with X)"), the
  upload's title spells out its artists ("A - Title") and X is nowhere: the solo version
  (Levitating without DaBaby, same length). A "solo" version is not charged twice.
* **Bonuses**: ``+0.05`` for an "Artist - Topic" channel of a Spotify artist (YouTube
  Music's auto-generated official audio: exactly the released master, no video intro);
  ``+0.15`` for a result of the ISRC query whose title and artist are plausible
  (title >= 0.6, artist >= 0.5): the ISRC names the exact recording, but YouTube also
  returns loose results for a quoted search, hence the plausibility check.

``THRESHOLD`` is 0.8: a right title and artist (1.0) stays above it with up to 7 s of
duration drift (0.895) or an unknown duration (0.9); one version mismatch (0.7), a
different artist (<= 0.5 + 0.5 * 0.5 = 0.75) or a rejected duration (0.7) falls below it.
A radio edit / extended mix mismatch alone (0.85) passes only when the duration agrees
within about 3 s, i.e. when the "other length" is in fact the same cut.
Views only break ties between equal scores (several re-uploads of the same audio).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from ..domain.normalize import TrackName, consonants, fold, parse, romanize
from . import ytdlp
from .ytdlp import DownloadOptions

THRESHOLD: float = 0.8
MAX_DURATION_DIFF_S = 7.0
MAX_RUNNERS_UP = 5

# Weights and penalties (see the module docstring for why each one is what it is).
_TITLE_WEIGHT = 0.5
_ARTIST_WEIGHT = 0.5
_CONTAINED_TITLE = 0.9
_FEATURED_FACTOR = 0.8
_SIMILAR_NAME_FACTOR = 0.5
_SKELETON_NAME = 0.9
_MIN_SKELETON_LETTERS = 4
_SAME_NAME = 0.9  # "is this artist named in the upload": whole-word or cross-script match
_PER_SECOND = 0.015
_TOO_FAR = 0.3
_NO_DURATION = 0.1
_VERSION_PENALTY = 0.3
_LENGTH_VERSION_PENALTY = 0.15
_LENGTH_VERSIONS = frozenset({"radio edit", "extended mix"})
_TOPIC_BONUS = 0.05
_ISRC_BONUS = 0.15
_ISRC_MIN_TITLE = 0.6
_ISRC_MIN_ARTIST = 0.5

# "<who> remix" / "<who> edit" ...: the last word is the kind of version.
_ATTRIBUTED_KIND = {"remix": "remix", "mix": "remix", "rework": "remix", "bootleg": "remix",
                    "flip": "remix", "refix": "remix", "edit": "edit", "mashup": "mashup",
                    "cover": "cover", "vip": "vip", "dub": "dub"}
# normalize's canonical version names (everything else is "<who> <kind>").
_CANONICAL_VERSIONS = frozenset({
    "extended mix", "radio edit", "club mix", "dub", "vip", "instrumental", "acapella", "slowed",
    "slowed reverb", "sped up", "nightcore", "8d audio", "cover", "karaoke", "demo", "remix", "mashup",
    "reprise", "orchestral", "piano version", "acoustic", "unplugged", "live", "solo", "alternate version",
})
# Words that mean "not the original audio" wherever they stand (outside brackets, in the
# channel name); deliberately not "live" or "edit", which are common in song titles.
# Longest first: "slowed reverb" is found before "slowed" and "reverb" (then skipped).
_MARKERS = {
    "nightcore": "nightcore", "sped up": "sped up", "speed up": "sped up", "spedup": "sped up",
    "slowed reverb": "slowed reverb", "slowed and reverb": "slowed reverb", "slowed": "slowed",
    "reverb": "slowed reverb", "8d": "8d audio", "karaoke": "karaoke",
    "instrumental": "instrumental", "remix": "remix", "cover": "cover", "bass boosted": "bass boosted",
    # sound-alike covers, wherever the words stand ("Song - Artist (Made Famous by X) [HD]")
    "made famous by": "cover", "made popular by": "cover", "in the style of": "cover",
    "originally performed by": "cover", "tribute": "cover", "soundalike": "cover", "sound alike": "cover",
    # labels that publish nothing but karaoke / sound-alike recordings, named by their channel
    "ameritz": "karaoke", "sing king": "karaoke", "party tyme": "karaoke", "karafun": "karaoke",
    "the hit crew": "cover",
}
_MARKER_RX = {word: re.compile(rf"(?<!\w){re.escape(word)}(?!\w)") for word in _MARKERS}
_TOPIC_CHANNEL = re.compile(r"\s-\s*topic\s*$", re.I)
_TITLE_DASH = re.compile(r"\s[-‐‑‒–—―−|]\s")
_UNUSABLE_TITLES = frozenset({"[private video]", "[deleted video]", "[unavailable video]"})


# --- data -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Wanted:
    """What Spotify says the track is (title as Spotify shows it, "Song - Radio Edit")."""

    title: str
    artists: tuple[str, ...]
    duration_s: float
    isrc: str | None = None
    album: str | None = None


@dataclass(frozen=True)
class Candidate:
    """One search result, as yt-dlp's flat search lists it (no per-video page fetched)."""

    url: str
    id: str
    title: str
    channel: str | None
    duration_s: float | None
    views: int | None = None

    @classmethod
    def from_entry(cls, entry: dict) -> Candidate | None:
        """A yt-dlp flat entry as a candidate; None for what cannot be a track: channels
        and playlists in the results, live or upcoming streams, private/deleted videos."""
        if not isinstance(entry, dict):
            return None
        video_id, title = entry.get("id"), (entry.get("title") or "").strip()
        if not video_id or not title or title.casefold() in _UNUSABLE_TITLES:
            return None
        if entry.get("ie_key") not in (None, "Youtube") or entry.get("live_status") in ("is_live", "is_upcoming"):
            return None
        url = entry.get("webpage_url") or entry.get("url") or ""
        if not url.startswith(("http://", "https://")):
            url = f"https://www.youtube.com/watch?v={video_id}"
        if "/channel/" in url or "/playlist" in url or "/@" in url:
            return None
        duration, views = entry.get("duration"), entry.get("view_count")
        return cls(
            url=url,
            id=str(video_id),
            title=title,
            channel=entry.get("channel") or entry.get("uploader") or None,
            duration_s=float(duration) if isinstance(duration, int | float) and duration > 0 else None,
            views=int(views) if isinstance(views, int | float) else None,
        )


@dataclass(frozen=True)
class Scored:
    """A candidate with its score and the reasons behind it, shown to the user as they are."""

    candidate: Candidate
    score: float
    reasons: tuple[str, ...]

    def as_dict(self) -> dict:
        c = self.candidate
        return {"url": c.url, "id": c.id, "title": c.title, "channel": c.channel,
                "duration_s": c.duration_s, "views": c.views,
                "score": round(self.score, 3), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Match:
    """The decision for one track: the best candidate, the next ones (so a user can pick
    another without searching again), whether a human should look, and why."""

    best: Scored | None
    runners_up: tuple[Scored, ...]
    needs_review: bool
    queries: tuple[str, ...]
    review_reason: str | None = None

    def as_dict(self) -> dict:
        """JSON-able: stored in the catalog and shown in the Dagster UI."""
        return {
            "best": self.best.as_dict() if self.best else None,
            "runners_up": [s.as_dict() for s in self.runners_up],
            "needs_review": self.needs_review,
            "review_reason": self.review_reason,
            "threshold": THRESHOLD,
            "queries": list(self.queries),
        }


# --- queries ------------------------------------------------------------------------------------

def isrc_query(isrc: str) -> str:
    """The quoted ISRC: YouTube then only returns uploads whose text carries it."""
    return f'"{isrc.strip().upper()}"'


def queries(wanted: Wanted) -> list[str]:
    """The searches to try, best first: the ISRC, then "Artists - Title", then
    "Main artist - Title" (co-artists are often missing from upload titles)."""
    out: list[str] = []
    if wanted.isrc and wanted.isrc.strip():
        out.append(isrc_query(wanted.isrc))
    artists = [a.strip() for a in wanted.artists if a and a.strip()]
    title = wanted.title.strip()
    if artists:
        out.append(f"{', '.join(artists)} - {title}")
        out.append(f"{artists[0]} - {title}")
    else:
        out.append(title)
    return list(dict.fromkeys(out))


# --- scoring --------------------------------------------------------------------------------------

def _ratio(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b).ratio() if a and b else 0.0


def _contains_words(haystack: str, needle: str) -> bool:
    """``needle``'s words appear in ``haystack``, contiguous and whole."""
    return bool(needle) and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


def _title_similarity(wanted: str, got: str) -> float:
    if not wanted or not got:
        return 0.0
    best = _ratio(wanted, got)
    if _contains_words(got, wanted) or _contains_words(wanted, got):
        best = max(best, _CONTAINED_TITLE)
    return best


def _bare(name: str) -> str:
    """A folded artist name without spaces or a leading "the" ("The Weeknd" = "Weeknd")."""
    return re.sub(r"^the\s+", "", name).replace(" ", "")


def _name_similarity(name: str, others: Iterable[str]) -> float:
    """How well one folded artist name matches any of the upload's names: 1.0 when equal
    (spaces and a leading "the" aside) or contained as whole words ("A and B"), else
    half the similarity of the spelling: a merely similar name is another artist more
    often than a typo ("Adele" / "Adelen"), since accents, punctuation, "&", VEVO and
    Topic suffixes are already gone after ``parse``."""
    bare = _bare(name)
    best = 0.0
    for other in others:
        if _contains_words(other, name) or (bare and bare == _bare(other)):
            return 1.0
        best = max(best, _SIMILAR_NAME_FACTOR * _ratio(bare, _bare(other)))
        if other and name.isascii() != other.isascii():  # another script (folded Latin is ASCII)
            best = max(best, _cross_script_similarity(name, other))
    return best


def _cross_script_similarity(name: str, other: str) -> float:
    """``name`` against ``other`` written in another script: 1.0 when the romanisations
    agree, 0.9 when only their consonant skeletons do (module docstring), else half the
    similarity of the romanisations, as for any other name."""
    a, b = romanize(name), romanize(other)
    if _contains_words(b, a) or (_bare(a) and _bare(a) == _bare(b)):
        return 1.0
    skeleton = consonants(name)
    if len(skeleton.replace(" ", "")) >= _MIN_SKELETON_LETTERS and _contains_words(consonants(other), skeleton):
        return _SKELETON_NAME
    return _SIMILAR_NAME_FACTOR * _ratio(_bare(a), _bare(b))


def _solo_marker(folded_title: str, names: Iterable[str]) -> str | None:
    """"just laroi" / "without dababy" in the upload's title when the words after it are an
    artist's name or one word of it (not "(Just Like) Starting Over")."""
    for name in names:
        for part in (name, *name.split()):
            if part in ("the", "and"):
                continue
            for word in ("just", "without"):
                if _contains_words(folded_title, marker := f"{word} {part}"):
                    return marker
    return None


def _credit_gap(spotify: Sequence[str], spotify_featured: Collection[str], title_credit: TrackName,
                is_named: Callable[[str], bool]) -> str | None:
    """Why the upload's own credit is not Spotify's, or None (rule in the module docstring).
    ``spotify``: every artist Spotify lists or its title features; ``title_credit``: the
    artists the upload's *title* names; ``is_named``: is this artist anywhere in the upload."""
    missing = [a for a in spotify if not is_named(a)]
    extra = [f for f in title_credit.featured
             if _name_similarity(f, spotify) < _SAME_NAME and all(_name_similarity(a, [f]) < _SAME_NAME for a in spotify)]
    if title_credit.featured and (missing or extra):
        return (f"the upload credits feat. {', '.join(title_credit.featured)}, "
                f"Spotify lists {', '.join(spotify)}")
    left_out = [a for a in missing if a in spotify_featured]
    if left_out and title_credit.artists:
        return (f"the upload credits {', '.join(title_credit.artists)} without {', '.join(left_out)}, "
                f"whom the Spotify title features")
    return None


def _kind(version: str) -> str:
    """The kind of a parsed version: "skrillex remix" → "remix"; ``normalize``'s canonical
    names are kinds themselves ("extended mix" is not a remix, "radio edit" not a DJ edit)."""
    if version in _CANONICAL_VERSIONS:
        return version
    last = version.rsplit(" ", 1)[-1]
    return _ATTRIBUTED_KIND.get(last, version) if " " in version else version


def _versions(name: TrackName, raw_text: str) -> dict[str, str]:
    """Kind → version text, from ``parse`` plus the marker words in the raw text."""
    found = {_kind(v): v for v in name.versions}
    for word, kind in _MARKERS.items():
        if kind in found or any(word in v for v in found.values()):
            continue  # a word counts once: "slowed" in "slowed reverb", "remix" in "x remix"
        if _MARKER_RX[word].search(raw_text):
            found[kind] = word
    return found


def _who(version: str) -> set[str]:
    """The remixer's words in "<who> remix" (empty for a bare "remix")."""
    if version in _CANONICAL_VERSIONS:
        return set()
    words = version.split()
    return set(words[:-1]) - {"and"} if len(words) > 1 and words[-1] in _ATTRIBUTED_KIND else set()


def _version_penalties(wanted: dict[str, str], got: dict[str, str]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for kind, version in wanted.items():
        cost = _LENGTH_VERSION_PENALTY if kind in _LENGTH_VERSIONS else _VERSION_PENALTY
        if kind not in got:
            out.append((f"Spotify title says '{version}', the upload doesn't", cost))
        elif (a := _who(version)) and (b := _who(got[kind])) and not a & b:
            out.append((f"'{got[kind]}' is not the Spotify '{version}'", cost))
    for kind, version in got.items():
        if kind not in wanted:
            cost = _LENGTH_VERSION_PENALTY if kind in _LENGTH_VERSIONS else _VERSION_PENALTY
            out.append((f"'{version}' not in the Spotify title", cost))
    return out


def _duration_ok(wanted: Wanted, candidate: Candidate) -> bool:
    """Not rejected on duration (an unknown duration is not a reason to reject)."""
    return candidate.duration_s is None or abs(candidate.duration_s - wanted.duration_s) <= MAX_DURATION_DIFF_S


def score(wanted: Wanted, candidate: Candidate, *, isrc_hit: bool = False) -> Scored:
    """Score one candidate (rule in the module docstring). ``isrc_hit``: the candidate was
    returned by the ISRC query."""
    # Spotify lists its artists one by one ("Tyler, The Creator" is one): fold them as they
    # are; parse the title (with the first artist for the "Title - Artist" rule) for the
    # core title, versions and "(feat. X)".
    want = parse(wanted.artists[0] if wanted.artists else None, wanted.title)
    spotify_artists = [a for a in dict.fromkeys(fold(a) for a in wanted.artists) if a]
    got = parse(candidate.channel, candidate.title)
    # The channel both cleaned ("ArtistVEVO" → "artist") and as it is ("Tyler, The Creator - Topic").
    channel_names = [n for n in (*parse(candidate.channel, "").artists, fold(candidate.channel or "")) if n]
    folded_title = fold(candidate.title)

    # The Spotify artists, main first; a featured artist is weaker evidence.
    want_feat = tuple(dict.fromkeys(a for a in (*spotify_artists, *want.featured) if a in want.featured))
    want_main = tuple(a for a in spotify_artists if a not in want_feat) or spotify_artists or want.artists

    def artist_and_title(artists: Iterable[str], title: str) -> tuple[float, float, str]:
        names = [*artists, *got.featured, *channel_names]
        best_artist, stripped = 0.0, title
        for factor, group in ((1.0, want_main), (_FEATURED_FACTOR, want_feat)):
            for name in group:
                if _contains_words(folded_title, name) or _contains_words(title, name):
                    sim = 1.0
                    if _contains_words(title, name):  # "The Weeknd Blinding Lights"
                        stripped = " ".join(re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", " ", title).split())
                else:
                    sim = _name_similarity(name, names)
                best_artist = max(best_artist, factor * sim)
        title_sim = max(_title_similarity(want.title, title), _title_similarity(want.title, stripped))
        return best_artist, title_sim, stripped

    artist_sim, title_sim, _ = artist_and_title(got.artists, got.title)
    if _TITLE_DASH.search(candidate.title) and got.artists:  # "Title - Artist" by an uploader
        swapped = artist_and_title([got.title], " ".join(got.artists))
        if swapped[0] + swapped[1] > artist_sim + title_sim:
            artist_sim, title_sim = swapped[0], swapped[1]

    total = _TITLE_WEIGHT * title_sim + _ARTIST_WEIGHT * artist_sim
    reasons = [f"title {title_sim:.2f}", f"artist {artist_sim:.2f}"]

    if candidate.duration_s is None:
        total -= _NO_DURATION
        reasons.append(f"duration unknown: -{_NO_DURATION:.2f}")
    else:
        diff = candidate.duration_s - wanted.duration_s
        if abs(diff) > MAX_DURATION_DIFF_S:
            total -= _TOO_FAR
            reasons.append(f"duration {diff:+.1f} s, beyond {MAX_DURATION_DIFF_S:g} s: -{_TOO_FAR:.2f}")
        else:
            cost = _PER_SECOND * abs(diff)
            total -= cost
            reasons.append(f"duration {diff:+.1f} s: -{cost:.2f}")

    want_text = fold(" ".join((wanted.title, *wanted.artists)))
    got_text = f"{folded_title} {fold(candidate.channel or '')}"
    want_versions, got_versions = _versions(want, want_text), _versions(got, got_text)
    spotify = list(dict.fromkeys((*spotify_artists, *want.featured)))
    upload_names = [*got.artists, *got.featured, *channel_names]
    solo = _solo_marker(folded_title, [*spotify, *got.artists])
    if "solo" not in got_versions and solo and not _contains_words(want_text, solo):
        got_versions["solo"] = solo
    for reason, cost in _version_penalties(want_versions, got_versions):
        total -= cost
        reasons.append(f"{reason}: -{cost:.2f}")

    def is_named(artist: str) -> bool:
        return _contains_words(folded_title, artist) or _name_similarity(artist, upload_names) >= _SAME_NAME

    if "solo" not in got_versions and (
            gap := _credit_gap(spotify, want.featured, parse(None, candidate.title), is_named)):
        total -= _VERSION_PENALTY
        reasons.append(f"{gap}: -{_VERSION_PENALTY:.2f}")

    topic = _TOPIC_CHANNEL.search(candidate.channel or "")
    if topic and max((_name_similarity(a, channel_names) for a in spotify), default=0.0) >= _SAME_NAME:
        total += _TOPIC_BONUS
        reasons.append(f"YouTube Music official audio (Topic channel): +{_TOPIC_BONUS:.2f}")
    if isrc_hit:
        if title_sim >= _ISRC_MIN_TITLE and artist_sim >= _ISRC_MIN_ARTIST:
            total += _ISRC_BONUS
            reasons.append(f"found by its ISRC: +{_ISRC_BONUS:.2f}")
        else:
            reasons.append("returned by the ISRC search but title/artist differ: no bonus")
    return Scored(candidate=candidate, score=round(max(total, 0.0), 4), reasons=tuple(reasons))


def choose(wanted: Wanted, candidates: Iterable[Candidate], *, isrc_hits: Collection[str] = (),
           queries: Iterable[str] = ()) -> Match:
    """Rank the candidates (duplicates by id counted once): a confident candidate within
    the duration limit always comes first (an ISRC bonus cannot lift a rejected duration
    over it); the rest go by score, which already carries the duration penalty, so a
    user reviewing sees the MV with an intro before a same-length cover. Views only
    break ties. ``isrc_hits``: ids the ISRC query returned."""
    unique: dict[str, Candidate] = {}
    for c in candidates:
        unique.setdefault(c.id, c)
    scored = [score(wanted, c, isrc_hit=c.id in isrc_hits) for c in unique.values()]
    scored.sort(key=lambda s: (_duration_ok(wanted, s.candidate) and s.score >= THRESHOLD, s.score,
                               s.candidate.views or 0), reverse=True)
    query_list = tuple(queries)
    if not scored:
        return Match(best=None, runners_up=(), needs_review=True, queries=query_list,
                     review_reason="no search result")
    best = scored[0]
    reason = None
    if not _duration_ok(wanted, best.candidate):
        reason = (f"no candidate within {MAX_DURATION_DIFF_S:g} s of the Spotify duration "
                  f"({wanted.duration_s:.0f} s)")
    elif best.score < THRESHOLD:
        reason = f"best score {best.score:.2f} is below {THRESHOLD:.2f}"
    return Match(best=best, runners_up=tuple(scored[1:1 + MAX_RUNNERS_UP]), needs_review=reason is not None,
                 queries=query_list, review_reason=reason)


# --- search ----------------------------------------------------------------------------------------

def search(query: str, options: DownloadOptions | None = None, limit: int = 10) -> list[Candidate]:
    """YouTube search through yt-dlp, flat (one request for the results page, no video
    page per result), nothing downloaded."""
    info = ytdlp.extract(f"ytsearch{limit}:{query}", ytdlp.params(
        options or DownloadOptions(), skip_download=True, extract_flat="in_playlist"), scope="search")
    entries = (info or {}).get("entries") or []
    return [c for c in (Candidate.from_entry(e) for e in entries) if c is not None]


def match(wanted: Wanted, search_fn: Callable[[str], list[Candidate]] = search) -> Match:
    """Run ``queries(wanted)`` in order, merging results by video id, and stop at the first
    query after which the choice is confident (saves searches and rate-limit budget)."""
    isrc_q = isrc_query(wanted.isrc) if wanted.isrc and wanted.isrc.strip() else None
    seen: dict[str, Candidate] = {}
    isrc_hits: set[str] = set()
    ran: list[str] = []
    result = Match(best=None, runners_up=(), needs_review=True, queries=(), review_reason="no search result")
    for query in queries(wanted):
        ran.append(query)
        for candidate in search_fn(query):
            seen.setdefault(candidate.id, candidate)
            if query == isrc_q:
                isrc_hits.add(candidate.id)
        result = choose(wanted, seen.values(), isrc_hits=isrc_hits, queries=ran)
        if not result.needs_review:
            break
    return dataclasses.replace(result, queries=tuple(ran))
