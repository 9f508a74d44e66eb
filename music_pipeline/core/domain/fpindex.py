"""Fingerprint matching that scales: an inverted index over sub-hashes, then alignment.

Comparing every pair of N fingerprints costs N²/2 alignments: 5·10⁹ at 100,000 tracks,
days of work. As in acoustid-index, matching goes in two stages instead:

1. **Candidates.** A Chromaprint fingerprint is a sequence of 32-bit items, about eight per
   second. A re-encoded, resampled, quieter or trimmed copy of a recording reproduces a
   good share of those items exactly (in the development corpus at least a fifth, usually
   three quarters), while another recording shares almost none. So each item value is a
   *term*, and tracks sharing at least ``MIN_SHARED`` terms become candidates. Only a
   content-defined quarter of the terms is kept (those whose hash is 0 mod ``SAMPLING``,
   the "winnowing" idea): both copies keep the *same* quarter, so shared terms stay shared
   while the index is four times smaller. Terms carried by more than ``STOP_DF`` tracks
   (silence, a constant tone) are stop words and are ignored, like acoustid-index does.
2. **Score.** Each candidate pair is aligned and scored exactly as pyacoustid's
   ``compare_fingerprints`` does (items within 2 bit errors, at the best offset within
   ±120 items, over the shorter fingerprint), vectorised over all offsets at once.

``dedup.find_groups`` links the pairs that score at least ``MATCH_THRESHOLD``. The same ``terms`` feed the catalog's persistent index, so a new track is checked against
the whole library with one indexed query instead of a scan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_OFFSET = 120  # pyacoustid's MAX_ALIGN_OFFSET: items (~15 s) a copy may be shifted by
MAX_BIT_ERROR = 2  # pyacoustid's MAX_BIT_ERROR: bits two items may differ in and still agree
MATCH_THRESHOLD = 0.5  # pyacoustid's usual cut; the corpus: copies ≥ 0.82, other recordings ≤ 0.17
SAMPLING = 4  # keep one term in four (content-defined, so copies keep the same ones)
MIN_ITEMS = 30  # a fingerprint of fewer items (under ~6 s of audio) proves nothing either way
MIN_SHARED = 5  # shared terms that make a candidate (copies share ≥ 30, others ≤ 16 in the corpus)
STOP_DF = 100  # a term in more tracks than this says nothing about any of them
ITEM_S = 1365 / 11_025  # one item per 4096-sample frame at 2/3 overlap, at Chromaprint's 11 025 Hz

_GOLDEN = np.uint64(0x9E3779B1)  # Knuth's multiplicative hash: spreads the items' bits


def decode(fingerprint: str) -> np.ndarray:
    """The raw 32-bit items of a compressed, base64 Chromaprint fingerprint."""
    import chromaprint  # pyacoustid's ctypes binding; decoding runs in libchromaprint

    items, _algorithm = chromaprint.decode_fingerprint(fingerprint.encode("ascii"))
    return np.asarray(items, dtype=np.int64).astype(np.uint32)


def terms(items: np.ndarray) -> np.ndarray:
    """The sampled, distinct sub-hash terms of one fingerprint (sorted uint32)."""
    items = np.asarray(items, dtype=np.uint32)
    mixed = (items.astype(np.uint64) * _GOLDEN) & np.uint64(0xFFFFFFFF)
    keep = (mixed >> np.uint64(20)) % np.uint64(SAMPLING) == 0
    return np.unique(items[keep])


def score(a: np.ndarray, b: np.ndarray, max_offset: int = MAX_OFFSET) -> float:
    """pyacoustid's similarity of two raw fingerprints, in [0, 1] (see ``align``)."""
    return align(a, b, max_offset)[0]


def align(a: np.ndarray, b: np.ndarray, max_offset: int = MAX_OFFSET) -> tuple[float, int]:
    """pyacoustid's similarity of two raw fingerprints, in [0, 1], and the offset it is found at.

    For every offset ``d`` in [-max_offset, max_offset) it counts the item pairs ``a[i]``,
    ``b[i + d]`` that differ in at most ``MAX_BIT_ERROR`` bits; the best offset's count over
    the shorter length is the score. All offsets are done in one array operation. ``d > 0``
    means ``b`` starts ``d`` items (``d * ITEM_S`` seconds) before ``a``: the audio ``a``
    lacks at its start, or ``b`` has in front of it.
    """
    a = np.asarray(a, dtype=np.uint32)
    b = np.asarray(b, dtype=np.uint32)
    if a.size == 0 or b.size == 0:
        return 0.0, 0
    width = 2 * max_offset
    padded = np.concatenate([np.zeros(max_offset, np.uint32), b, np.zeros(max_offset, np.uint32)])
    valid = np.concatenate([np.zeros(max_offset, bool), np.ones(b.size, bool), np.zeros(max_offset, bool)])
    if padded.size < a.size + width - 1:  # b shorter than a: pad the end so every row has a window
        extra = a.size + width - 1 - padded.size
        padded = np.concatenate([padded, np.zeros(extra, np.uint32)])
        valid = np.concatenate([valid, np.zeros(extra, bool)])
    # Row i holds b[i - max_offset : i + max_offset]: the items a[i] may align with.
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)[: a.size]
    inside = np.lib.stride_tricks.sliding_window_view(valid, width)[: a.size]
    agree = ((np.bitwise_count(windows ^ a[:, None]) <= MAX_BIT_ERROR) & inside).sum(axis=0)
    best = int(agree.argmax())  # of equal counts, the most negative offset
    return float(agree[best]) / min(a.size, b.size), best - max_offset


def candidate_pairs(term_sets: Sequence[np.ndarray], min_shared: int = MIN_SHARED,
                    stop_df: int = STOP_DF) -> np.ndarray:
    """Pairs (i, j), i < j, of fingerprints sharing at least ``min_shared`` terms.

    Works on the posting lists of all terms at once: sort (term, track) pairs, keep the
    runs of one term held by 2..stop_df tracks, emit the pairs inside each run, count.
    Time and memory grow with the number of terms and of co-occurrences, not with N².
    """
    sizes = np.fromiter((t.size for t in term_sets), dtype=np.int64, count=len(term_sets))
    if sizes.sum() == 0:
        return np.empty((0, 2), dtype=np.int64)
    # One sorted array of (term << 32 | track) keys: the posting lists, end to end.
    keys = np.concatenate([np.asarray(t, dtype=np.uint64) << np.uint64(32) | np.uint64(i)
                           for i, t in enumerate(term_sets) if t.size])
    keys.sort()
    term = keys >> np.uint64(32)
    starts = np.flatnonzero(np.r_[True, term[1:] != term[:-1]])
    del term
    lengths = np.diff(np.r_[starts, keys.size])
    shared_runs = (lengths >= 2) & (lengths <= stop_df)
    # Only the entries of useful runs, each tagged with its run.
    run_of = np.repeat(np.arange(starts.size), lengths)
    keep = shared_runs[run_of]
    track = (keys[keep] & np.uint64(0xFFFFFFFF)).astype(np.int64)
    run_of = run_of[keep]
    del keys, keep
    codes: list[np.ndarray] = []
    n = len(term_sets)
    for gap in range(1, int(lengths[shared_runs].max(initial=1))):
        same_run = run_of[gap:] == run_of[:-gap]
        if not same_run.any():
            break
        first, second = track[:-gap][same_run], track[gap:][same_run]
        codes.append(first * n + second)  # tracks are sorted within a run: first < second
    if not codes:
        return np.empty((0, 2), dtype=np.int64)
    pair_codes, counts = np.unique(np.concatenate(codes), return_counts=True)
    chosen = pair_codes[counts >= min_shared]
    return np.stack([chosen // n, chosen % n], axis=1)


def matching_pairs(fingerprints: Sequence[np.ndarray], threshold: float = MATCH_THRESHOLD,
                   min_shared: int = MIN_SHARED) -> dict[tuple[int, int], float]:
    """The pairs (i, j), i < j, of fingerprints of the same recording, with their scores:
    candidates from the index, kept when their aligned score reaches ``threshold``."""
    return {pair: value for pair, (value, _offset) in matching_alignments(fingerprints, threshold, min_shared).items()}


def matching_alignments(fingerprints: Sequence[np.ndarray], threshold: float = MATCH_THRESHOLD,
                        min_shared: int = MIN_SHARED) -> dict[tuple[int, int], tuple[float, int]]:
    """``matching_pairs`` with each pair's offset (``align(fingerprints[i], fingerprints[j])``)."""
    pairs = candidate_pairs([terms(f) for f in fingerprints], min_shared)
    found = {}
    for i, j in pairs.tolist():
        value, offset = align(fingerprints[i], fingerprints[j])
        if value >= threshold:
            found[(i, j)] = (value, offset)
    return found
