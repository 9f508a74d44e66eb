"""Artist/title normalisation: do two tracks' artist + title name the same recording?

``parse(artist, title).key`` is the matching key for duplicate detection and for
Spotify→YouTube matching. The same recording arrives in many spellings: Spotify
("One More Time - Radio Edit"), YouTube ("Daft Punk - One More Time (Official Video)" by
"DaftPunkVEVO"), SoundCloud uploads by labels, tagged local files. The key must be equal
for all of them and differ whenever the audio differs (a remix, a live take, a slowed edit).

Decisions (kept deliberately simple and predictable):

* ``fold``: NFKC, casefold, Latin diacritics removed (``é``→``e``, ``ø``→``o``, ``ß``→``ss``);
  marks on other scripts are kept (``ガ`` ≠ ``カ``, ``й`` ≠ ``и``). Apostrophes are
  deleted (``Don’t`` = ``Don't`` = ``Dont``), ``&`` → ``and``, ``$`` → ``s`` (``A$AP`` =
  ``ASAP`` ≠ ``AAP``; ``Ke$ha`` = ``Kesha``), dotted acronyms close up (``R.E.M.`` = ``REM``),
  any other punctuation or symbol becomes a space.
* Main artists are split on ``,`` and ``;`` only; ``&``/``and``/``x``/``vs`` stay inside one
  name ("Simon & Garfunkel" is one artist). Featured artists (``feat.``/``ft``/
  ``featuring``/``(with X)``/``w/ X``, in the title or the artist field) are split on
  ``,`` ``&`` ``and`` ``x`` ``vs`` ``with`` ``+``. Featured artists are not in the key, and a
  name listed both as main and featured artist counts as featured only (Spotify lists
  featured artists as co-artists, YouTube titles say "ft.").
* Noise — words that don't change the audio — is dropped from ( ), [ ], 【 】 and from
  " - " / " | " suffixes: Official/Music/Lyric Video, Lyrics, Audio, Visualizer, HD/4K,
  Explicit/Clean, MV, Out Now, Free Download, Premiere, album/single version, years,
  and Remaster(ed): a remaster counts as the same recording. Mono/Stereo too. Also
  producer credits ("prod. by X"), soundtrack credits ('From "Frozen"') and label
  release tags ("[Monstercat Release]"). A leading "Premiere:" is dropped as well.
* Versions that are different audio are kept, normalised (``versions``, part of the key):
  "<who> remix", "live" (venue dropped), "acoustic", "extended mix" (= Extended Version
  = Extended), "radio edit" (= Radio Version = Edit), "club mix", "dub", "vip",
  "instrumental", "acapella", "slowed" and "slowed reverb" (kept apart: different audio),
  "sped up", "nightcore", "8d audio", "cover", "karaoke", "demo", "reprise", "orchestral",
  "piano version", "unplugged", plus "<who> edit/rework/bootleg/flip/mashup/mix".
  Sound-alike and karaoke labels name the artist they imitate ("Made Famous by X",
  "Made Popular by X", "In the Style of X", "Originally Performed by X", "Tribute to X",
  "X Tribute", "Soundalike"): a "cover", whoever uploads it. "Solo (Version)", "just X" edits
  aside, is "solo" (the version without the featured artist) and "Alternate/Alternative
  (Version/Take)" is "alternate version"; bare "Solo", "Tribute" or "Alternative" are also
  song titles ("Clean Bandit - Solo"), so in a " - " suffix they count only with "Version".
  "Original Mix" means no version. Unknown bracket text stays in the title
  ("(I Can't Get No) Satisfaction", "(Taylor's Version)", a romanised title).
* YouTube channels: "X - Topic", "XVEVO" (glued CamelCase is split: "DaftPunkVEVO" →
  "Daft Punk"), "X Official [Channel]", "X Music", "X TV" name the artist X.
* A title "A - B" whose tail is not noise/version is read as "Artist - Title" whatever
  the artist field says (it may be an uploader such as a label channel), except that
  "Title - Artist" is recognised when B is the artist field, and "A - B" is left alone
  when A is the artist field and B is a noise word (LSD - "Audio"). Japanese
  "Artist「Title」" is read the same way.

``romanize`` and ``consonants`` are for comparing *names across scripts* only (Spotify
"Дима Билан", YouTube "Dima Bilan"); the key keeps scripts apart. ``romanize`` is
anyascii's transliteration, folded. It is exact enough for Cyrillic, not for scripts that
leave vowels unwritten or romanise them several ways (Hebrew "סטטיק ובן אל" → "sttyk vvn l"
for "Static & Ben El"; Greek "Έλενα" → "elena" for "Helena"), hence ``consonants``: the
consonant skeleton of both romanisations.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from anyascii import anyascii

# --- fold -------------------------------------------------------------------------------

# Letters without a decomposition that casefold leaves alone; apostrophes vanish.
_FOLD_TABLE = str.maketrans({
    "ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "ŧ": "t",
    "æ": "ae", "œ": "oe", "þ": "th",
    "&": " and ", "$": "s",
    "'": "", "’": "", "‘": "", "ʼ": "", "`": "", "´": "", "′": "",
})
_ACRONYM = re.compile(r"\b[^\W\d_](?:\.[^\W\d_])+\b\.?")  # r.e.m. / n.w.a


def _is_latin(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("LATIN")


def fold(text: str) -> str:
    """NFKC, casefold, diacritics removed from Latin letters only (é→e, ø→o, ß→ss via
    casefold), '&'→'and', punctuation → space, whitespace collapsed. Non-Latin scripts keep
    their marks, so '東京' and 'Москва' stay distinct non-empty strings."""
    if not text:
        return ""
    s = unicodedata.normalize("NFKC", text).casefold()
    s = _ACRONYM.sub(lambda m: m.group(0).replace(".", ""), s)
    s = s.translate(_FOLD_TABLE)
    out: list[str] = []
    keep_marks = False  # marks survive only on a non-Latin letter or digit
    for ch in unicodedata.normalize("NFD", s):
        cat = unicodedata.category(ch)
        if cat[0] == "M":
            if keep_marks:
                out.append(ch)
        elif cat[0] in "LN":
            keep_marks = not _is_latin(ch)
            out.append(ch)
        else:
            keep_marks = False
            out.append(" ")
    return " ".join(unicodedata.normalize("NFC", "".join(out)).split())


def _compact(text: str) -> str:
    return fold(text).replace(" ", "")


def romanize(text: str) -> str:
    """``fold`` of the text transliterated to ASCII (anyascii): "Дима Билан" → "dima bilan",
    "Έλενα Παπαρίζου" → "elena paparizoy". For comparing names across scripts; not a key."""
    return fold(anyascii(fold(text))) if text else ""


# Skeleton letters: c/q/k and p/f (Hebrew פ, Greek φ) are one sound each; vowels, y, h, w,
# v and b go, because Hebrew writes ו (v, o or u, or "and" glued to the next word) and ב
# (b or v) alike and leaves vowels out, Greek υ romanises as y, and an initial H (Greek
# rough breathing, "Helena"/"Έλενα") is not written.
_SKELETON = str.maketrans({"c": "k", "q": "k", "x": "ks", "f": "p", **dict.fromkeys("aeiouyhwvb", "")})
_SKELETON_SKIP = frozenset({"and", "the"})


def consonants(text: str) -> str:
    """The consonant skeleton of the romanised text, word by word ("and"/"the" dropped,
    repeated letters once): "Static & Ben El" and "סטטיק ובן אל" both give "stk n l",
    "Helena Paparizou" and "Έλενα Παπαρίζου" both "ln prz". Lossy by design: a match is
    evidence across scripts, never within one (see ``romanize``)."""
    out = []
    for word in romanize(text).split():
        if word in _SKELETON_SKIP:
            continue
        letters = re.sub(r"[^a-z]", "", word).translate(_SKELETON)
        if squeezed := re.sub(r"(.)\1+", r"\1", letters):
            out.append(squeezed)
    return " ".join(out)


# --- vocabulary ---------------------------------------------------------------------------

_NOISE_WORDS = frozenset({
    "official", "video", "videoclip", "clip", "music", "lyric", "lyrics", "letra", "audio",
    "visualizer", "visualiser", "hd", "hq", "uhd", "4k", "8k", "1080p", "720p", "60fps",
    "remastered", "remaster", "remasterd", "digital", "explicit", "clean", "uncensored",
    "version", "mv", "color", "colour", "coded", "out", "now", "free", "download", "dl",
    "premiere", "album", "single", "bonus", "track", "with", "exclusive", "mono", "stereo",
    "soundtrack", "ost", "release",
})
_LEADING_NOISE = frozenset({"official", "hd", "hq", "4k", "premiere", "exclusive", "free"})
_YEAR = re.compile(r"(?:19|20)\d\d")
_MV = re.compile(r"\bm v\b")
_PROD_CREDIT = re.compile(r"prod(?:uced)?(?: by)? .+")
_FROM_CREDIT = re.compile(
    r"(?:taken\s+)?from\s+(?:the\s+)?(?:[\"“”'‘’«]|(?:original\s+)?"
    r"(?:motion picture|film|movie|series|tv series|netflix|soundtrack|musical|album|anime)\b)",
    re.I,
)

# Whole (noise-stripped) bracket contents → canonical version; an empty name drops it.
_CANONICAL = [(re.compile(rx), name) for rx, name in [
    (r"original(?: mix)?", ""),
    (r"extended(?: club)?(?: mix| edit)?", "extended mix"),
    (r"(?:radio|single|short)(?: edit| mix| cut)?|edit", "radio edit"),
    (r"club(?: mix| edit)?", "club mix"),
    (r"dub(?: mix)?", "dub"),
    (r"vip(?: mix| edit)?", "vip"),
    (r"instrumental|inst|off vocal|backing track", "instrumental"),
    (r"a ?c+ap+ell?a|vocals? only", "acapella"),
    (r"slowed(?: down)?", "slowed"),
    (r"slowed(?: down)?(?: and)? reverb(?:ed)?|reverb(?: and)? slowed", "slowed reverb"),
    (r"sped up|speed up|spedup|sped", "sped up"),
    (r"nightcore", "nightcore"),
    (r"8d", "8d audio"),  # "audio" is stripped as noise before we get here
    (r"cover", "cover"),
    (r"karaoke", "karaoke"),
    (r"demo", "demo"),
    (r"remix|rmx|remixed", "remix"),
    (r"rework|bootleg|flip|refix", "="),  # "=": the word itself
    (r"mash ?up", "mashup"),
    (r"reprise", "reprise"),
    (r"orchestral|orchestra", "orchestral"),
    (r"piano", "piano version"),
    (r"acoustic(?: session| sessions)?", "acoustic"),
    (r"(?:mtv )?unplugged", "unplugged"),
]]

# Sound-alike / karaoke labels crediting the artist they imitate: a cover.
_SOUND_ALIKE = re.compile(
    r"(?:as )?(?:made (?:famous|popular)|populari[sz]ed|originally(?: performed| recorded| sung)?) by .+"
    r"|in the style of .+|(?:a )?tribute to .+|sound ?alike")
# Versions that are also song titles on their own ("Clean Bandit - Solo", "Tenacious D -
# Tribute"): in brackets, or in a " - " suffix that says "version".
_TITLE_LIKE_VERSIONS = [(re.compile(rx), name) for rx, name in [
    (r"(?:.+ )?tribute", "cover"),
    (r"(?:\S+ ){0,2}solo", "solo"),  # "(Solo Version)", "(LAROI Solo)"
    (r"alt(?:ernate|ernative)?(?: take| mix)?", "alternate version"),
]]

# "<who> remix" and friends; the remixer is part of the version.
_ATTRIBUTED = re.compile(
    r"(.+?) (remix|rmx|remixed|re edit|edit|rework|bootleg|flip|refix|mash ?up|vip(?: mix)?|dub(?: mix)?|mix|cover)")
_REMIX_BY = re.compile(r"remix(?:ed)? by (.+)")
_ATTRIBUTED_WORD = {"rmx": "remix", "remixed": "remix", "re edit": "edit", "mash up": "mashup",
                    "vip mix": "vip", "dub mix": "dub"}
_LIVE_NEXT = frozenset({"at", "from", "in", "on", "version", "session", "sessions", "performance",
                        "recording", "lounge", "edit"})

# --- title / artist syntax ----------------------------------------------------------------

_DASH = re.compile(r"\s+[‐‑‒–—―−]\s*|\s*[‐‑‒–—―−]\s+")
_PREMIERE = re.compile(r"^\s*premiere\s*[:|-]\s*", re.I)
_BRACKET = re.compile(r"\(([^()\[\]【】]*)\)|\[([^()\[\]【】]*)\]|【([^()\[\]【】]*)】|\{([^{}]*)\}")
_SEP = re.compile(r"(\s+[-|]\s+)")  # captured so "|" and "-" can be told apart
_PIECE = re.compile(r"\s+[-|/]\s+|\s*,\s*")  # "(Live - Official Video)", "(Radio Edit, HD)"
_CJK_QUOTE = re.compile(r"^(.*?)\s*[「『](.+?)[」』]\s*(.*)$")
_FEAT_HEAD = re.compile(r"^(?:feat|ft|featuring)(?:\.\s*|\s+)(\S.*)$", re.I)
_WITH_HEAD = re.compile(r"^(?:with\s+|w/\s*)(\S.*)$", re.I)
_FEAT_INLINE = re.compile(r"(?:^|(?<=[\s(\[]))(?:(?:feat|ft|featuring)(?:\.|\s)|w/)\s*(\S.*)$", re.I)
_ARTIST_FEAT = re.compile(r"\s*[(\[]?\s*\b(?:feat|ft|featuring)(?:\.|\s)\s*", re.I)
_FEAT_SPLIT = re.compile(r"\s*(?:[,;&+]|\s(?:and|x|×|vs\.?|with)\s)\s*", re.I)
_MAIN_SPLIT = re.compile(r"\s*[,;]\s*")
_TRAILING_NOISE = re.compile(
    r"\s+(?:official(?:\s+(?:music|lyrics?|hd))?\s+(?:video|audio|mv|m/v|visuali[sz]er)"
    r"|(?:music|lyrics?)\s+video|mv|m/v)\s*$", re.I)

_TOPIC = re.compile(r"^(.*?\S)\s*-\s*topic$", re.I)
_VEVO = re.compile(r"^(.*?)(\s*)vevo$", re.I)
_CHANNEL_SUFFIX = re.compile(
    r"^(.*?\S)\s*-?\s+(?:official(?:\s+(?:youtube\s+)?(?:artist\s+)?(?:channel|page|music))?"
    r"|music|tv|channel)$", re.I)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NO_ARTIST = frozenset({"various artists", "various", "unknown artist", "unknown", "va"})

_NOISE, _VERSION, _FEAT, _OTHER = "noise", "version", "feat", "other"


@dataclass(frozen=True)
class TrackName:
    artists: tuple[str, ...]  # main artists, folded, sorted
    featured: tuple[str, ...]  # featured artists, folded, sorted
    title: str  # folded core title: no noise, no feat., no version words
    versions: tuple[str, ...]  # folded version descriptors, sorted

    @property
    def key(self) -> str:
        """Grouping key "artists|title|versions" (featured artists are not part of it);
        empty when there is no title."""
        if not self.title:
            return ""
        return f"{','.join(self.artists)}|{self.title}|{','.join(self.versions)}"


# --- classification of one bracket / suffix ------------------------------------------------

def _split_featured(text: str) -> list[str]:
    return [name for part in _FEAT_SPLIT.split(text) if (name := fold(part))]


def _is_noise(folded: str, raw: str) -> bool:
    if _PROD_CREDIT.fullmatch(folded) or _FROM_CREDIT.match(raw) or folded.endswith(" release"):
        return True  # "prod. by X", 'From "Frozen"', "[Monstercat Release]"
    return all(w in _NOISE_WORDS or _YEAR.fullmatch(w) for w in folded.split())


def _strip_noise_edges(folded: str) -> str:
    words = folded.split()
    while words and (words[-1] in _NOISE_WORDS or _YEAR.fullmatch(words[-1])):
        words.pop()
    while words and words[0] in _LEADING_NOISE:
        words.pop(0)
    return " ".join(words)


def _canonical(core: str) -> tuple[str, ...] | None:
    for rx, name in _CANONICAL:
        if rx.fullmatch(core):
            return (core,) if name == "=" else ((name,) if name else ())
    return None


def _version(folded: str, suffix: bool) -> tuple[str, ...] | None:
    """Canonical versions for a folded segment ((): "same as no version"), None if unknown."""
    core = _strip_noise_edges(folded)
    if not core:
        return None
    found = _canonical(core)
    if found is not None:
        return found
    if _SOUND_ALIKE.fullmatch(core):
        return ("cover",)
    for rx, name in _TITLE_LIKE_VERSIONS:
        if rx.fullmatch(core) and (not suffix or "version" in folded.split()):
            return (name,)
    words = core.split()
    if words[0] == "recorded" and len(words) > 1:
        words = words[1:]
    if words[0] == "live":  # "Live", "Live at Wembley 1986", "Live Acoustic"; not "- Live Forever"
        rest = " ".join(words[1:])
        extra = _canonical(rest) if rest else ()
        if extra is not None:
            return ("live", *extra)
        # in a " - " suffix the venue must look like one ("Live at X", "Live Aid 1985")
        if not suffix or words[1] in _LIVE_NEXT or _YEAR.search(folded):
            return ("live",)
    if words[-1] == "live":  # "Acoustic Live", "Wembley Live"
        return ("live", *(_canonical(" ".join(words[:-1])) or ()))
    if m := _REMIX_BY.fullmatch(core):
        return (f"{m.group(1)} remix",)
    if (m := _ATTRIBUTED.fullmatch(core)) and not (suffix and m.group(2) == "cover"):
        # "Artist - Take Cover" is a title, "(Boyce Avenue Cover)" a version
        return (f"{m.group(1)} {_ATTRIBUTED_WORD.get(m.group(2), m.group(2))}",)
    return None


def _classify(raw: str, suffix: bool = False) -> tuple[str, tuple[str, ...]]:
    """What one bracket's contents (or one " - " suffix) are: noise, version(s), featured
    artists, or other (= part of the title)."""
    text = raw.strip()
    if m := _FEAT_HEAD.match(text):
        return _FEAT, tuple(_split_featured(m.group(1)))
    folded = _MV.sub("mv", fold(text.replace("@", " at ")))
    if not folded or _is_noise(folded, text):
        return _NOISE, ()
    if m := _WITH_HEAD.match(text):  # after noise: "(with Lyrics)" is noise
        return _FEAT, tuple(_split_featured(m.group(1)))
    found = _version(folded, suffix)
    if found is not None:
        return _VERSION, found
    pieces = [p for p in _PIECE.split(text) if p.strip()]
    if len(pieces) > 1:  # "(Live - Official Video)": every piece must be known
        results = [_classify(p, suffix) for p in pieces]
        if all(kind != _OTHER for kind, _ in results):
            feats = tuple(v for kind, values in results if kind == _FEAT for v in values)
            if feats:  # mixed feat + version is rare; keep the feat, drop the rest
                return _FEAT, feats
            vers = tuple(v for kind, values in results if kind == _VERSION for v in values)
            return (_VERSION, vers) if vers else (_NOISE, ())
    return _OTHER, ()


# --- artist field ---------------------------------------------------------------------------

def _clean_channel(artist: str) -> tuple[str, bool]:
    """Strip YouTube channel decorations; also report whether the field was a channel."""
    if m := _TOPIC.match(artist):
        return m.group(1), True
    if (m := _VEVO.match(artist)) and m.group(1).strip():
        name = m.group(1).strip()
        if not m.group(2) and " " not in name:  # glued: "DaftPunkVEVO"
            name = _CAMEL.sub(" ", name)
        return name, True
    if m := _CHANNEL_SUFFIX.match(artist):
        return m.group(1), True
    return artist, False


def _split_artist(text: str) -> tuple[list[str], list[str]]:
    """Main artists and featured artists of an artist string ("A, B feat. C & D")."""
    main, *rest = _ARTIST_FEAT.split(text, maxsplit=1)
    featured = _split_featured(rest[0]) if rest else []
    artists = [name for part in _MAIN_SPLIT.split(main) if (name := fold(part)) and name not in _NO_ARTIST]
    return artists, featured


def _prep(text: str | None) -> str:
    return _DASH.sub(" - ", unicodedata.normalize("NFKC", text or "")).strip()


# --- parse ----------------------------------------------------------------------------------

def parse(artist: str | None, title: str | None) -> TrackName:
    """Split an artist field and a title into main artists, featured artists, core title
    and versions, all folded (see the module docstring for the rules)."""
    featured: list[str] = []
    versions: set[str] = set()

    artist_text, is_channel = _clean_channel(_prep(artist))
    field_artists, field_featured = _split_artist(artist_text)
    featured += field_featured
    artist_key = "".join(field_artists).replace(" ", "")

    # Brackets, innermost first: drop noise, collect versions and featured artists.
    text = _PREMIERE.sub("", _prep(title))
    while m := _BRACKET.search(text):
        content = next(g for g in m.groups() if g is not None)
        kind, values = _classify(content)
        if kind == _FEAT:
            featured += values
        elif kind == _VERSION:
            versions.update(values)
        keep = f" {content} " if kind == _OTHER else " "
        text = f"{text[:m.start()]}{keep}{text[m.end():]}"

    # " - " / " | " suffixes from the end while they are noise, versions or featured.
    parts = _SEP.split(text.strip())
    while len(parts) >= 3:
        if len(parts) == 3 and artist_key and _compact(parts[0]) == artist_key:
            break  # "LSD - Audio" by LSD: the tail is the title
        kind, values = _classify(parts[-1], suffix=True)
        if kind == _OTHER:
            break
        if kind == _FEAT:
            featured += values
        elif kind == _VERSION:
            versions.update(values)
        del parts[-2:]

    # "Artist - Title" (or "Title - Artist" when the tail is the artist field).
    artists = field_artists
    dash = next((i for i in range(1, len(parts), 2) if parts[i].strip() == "-"), None)
    if dash is not None and _compact(left := "".join(parts[:dash])):
        right = "".join(parts[dash + 1:])
        if artist_key and not is_channel and _compact(right) == artist_key != _compact(left):
            left, right = right, left
        artists, split_featured = _split_artist(left)
        featured += split_featured
        text = right
    else:
        text = "".join(parts)
        if (m := _CJK_QUOTE.match(text)) and _compact(m.group(1)):
            artists, split_featured = _split_artist(m.group(1))
            featured += split_featured
            text = f"{m.group(2)} {m.group(3)}"

    if m := _FEAT_INLINE.search(text):
        featured += _split_featured(m.group(1))
        text = text[:m.start()]
    while (stripped := _TRAILING_NOISE.sub("", text)) != text and stripped.strip():
        text = stripped

    featured_set = set(featured)
    main = {a for a in artists if a not in featured_set} or set(artists)
    return TrackName(
        artists=tuple(sorted(main)),
        featured=tuple(sorted(featured_set)),
        title=fold(text),
        versions=tuple(sorted(v for v in versions if v)),
    )
