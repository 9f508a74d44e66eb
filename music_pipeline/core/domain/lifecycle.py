"""A track's life in one place: where it stands (``Status``), what may move it (``Event``)
and, for every event from every status, one of three outcomes:

* **allowed**: the track moves to the event's target status;
* **ignored**: nothing changes, on purpose: the rule says "only while still X" (a run of a
  track set aside as a duplicate must not flip it back; a dead run's report fails its track
  only while it is still running);
* **refused**: the caller asked for something the library never does (set aside a track
  that already is a duplicate, undo a duplicate into "running"): ``TransitionRefused``.

Every status change in the product is one of these events. The catalog applies them in one
conditional write (``UPDATE ... WHERE status IN (allowed sources)``), so two processes
racing for a track can never leave it where this table does not allow.

The table follows what the product does: every step of a run can be re-executed on its own
from Dagster's UI ("re-execute from failure", one asset materialised again), so the events
of a run (start, fail, need review, finish) are allowed from every status a run can find a
track in, and only the duplicate set-aside, which a person undoes, is sticky.

    register ─► queued ──start──► running ──finish──► done
                  ▲                  │ fail, crash (crash: only while running)
          requeue │                  ▼
                  └────────── failed, needs_review     reject: queued ─► failed, before any run

    a run's events (start, fail, need review, finish) and requeue: from any status but duplicate
    set aside: any status but duplicate ─► duplicate ──undo──► the status it had before
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import Reason, TrackError


class Status(StrEnum):
    QUEUED = "queued"  # registered, waiting for a run
    RUNNING = "running"  # a run is working on it (or was, and died: see selection's "all")
    DONE = "done"  # every format written, tagged and catalogued
    FAILED = "failed"  # ``error``, ``error_step`` and ``error_reason`` say why
    NEEDS_REVIEW = "needs_review"  # a doubtful Spotify match waits for a person (``pin``)
    DUPLICATE = "duplicate"  # set aside as a copy of ``duplicate_of``, until ``dedup --undo``

    @property
    def finished(self) -> bool:
        """Nothing left to do unless forced (explicit requests skip these)."""
        return self in (Status.DONE, Status.DUPLICATE)


#: The status a newly registered track starts in.
INITIAL = Status.QUEUED


class Event(StrEnum):
    """What moves a track, named as the user would say it (shown in refusals)."""

    START = "start"  # a run starts working on it (the raw_audio step)
    FAIL = "fail"  # one of its steps failed
    CRASH = "crash"  # the process of the run working on it died
    FINISH = "finish"  # every output written, tagged and catalogued (the catalog step)
    NEED_REVIEW = "need review"  # no confident Spotify match: a person picks one
    REQUEUE = "requeue"  # a source pinned by hand: back in the queue
    REJECT = "reject"  # a listing says its source cannot be downloaded, before any run
    SET_ASIDE = "set aside as duplicate"  # dedup: a copy of a track the library keeps
    UNDO = "undo duplicate"  # `dedup --undo`: back to the status it had before


class TransitionRefused(TrackError):
    """A status change the lifecycle does not allow: a bug, or a race another process won."""

    reason = Reason.INTERNAL

    def __init__(self, event: Event, current: Status, target: Status | None, why: str,
                 key: str | None = None) -> None:
        self.event, self.current, self.target, self.key = event, current, target, key
        who = f"track {key}" if key else "a track"
        to = f" to {target}" if target else ""
        super().__init__(f"Cannot {event} {who}{to}: it is {current}, and {why}.")


_ANY = frozenset(Status)
_NOT_SET_ASIDE = _ANY - {Status.DUPLICATE}
_STICKY = "a track set aside as a duplicate stays one until `dedup --undo`; a run of it must not flip it back"


@dataclass(frozen=True)
class Rule:
    """One event: the statuses it moves a track from, where to, and why."""

    event: Event
    sources: frozenset[Status]
    targets: frozenset[Status]
    why: str
    #: statuses the event leaves alone on purpose (the caller's "only while still X")
    ignored: frozenset[Status] = frozenset()
    ignored_why: str = ""

    def resolve(self, wanted: Status | str | None = None) -> Status | None:
        """The status the event leads to: its only one, or ``wanted`` when it has several
        (undo restores the status recorded before); None for one it never leads to."""
        if wanted is None:
            if len(self.targets) != 1:
                raise ValueError(f"{self.event} needs the status to go back to")
            return next(iter(self.targets))
        wanted = Status(wanted)
        return wanted if wanted in self.targets else None


RULES: dict[Event, Rule] = {rule.event: rule for rule in (
    Rule(Event.START, _NOT_SET_ASIDE, frozenset({Status.RUNNING}),
         "a run (or a re-executed step) works on the track: queued, again after a failure, a review or a "
         "finished run (forced, reprocessed), or after a run that died while running it",
         ignored=frozenset({Status.DUPLICATE}), ignored_why=_STICKY),
    Rule(Event.FAIL, _NOT_SET_ASIDE, frozenset({Status.FAILED}),
         "a step failed; any step can fail, even one re-executed on a finished track",
         ignored=frozenset({Status.DUPLICATE}), ignored_why=_STICKY),
    Rule(Event.CRASH, frozenset({Status.RUNNING}), frozenset({Status.FAILED}),
         "the run working on it is gone, so the track is not running any more",
         ignored=_ANY - {Status.RUNNING},
         ignored_why="only a track still running is failed: one that finished, failed or was requeued "
                     "since has moved on, and its status is true"),
    Rule(Event.FINISH, _NOT_SET_ASIDE, frozenset({Status.DONE}),
         "every output is in; the catalog step also runs alone (re-executed from a failure, or again "
         "on a finished track)",
         ignored=frozenset({Status.DUPLICATE}), ignored_why=_STICKY),
    Rule(Event.NEED_REVIEW, _NOT_SET_ASIDE, frozenset({Status.NEEDS_REVIEW}),
         "matching decides before the download, whatever the track's last status",
         ignored=frozenset({Status.DUPLICATE}), ignored_why=_STICKY),
    Rule(Event.REQUEUE, _NOT_SET_ASIDE, frozenset({Status.QUEUED}),
         "a source pinned by hand: the track is fetched again from there, its last error forgotten",
         ignored=frozenset({Status.DUPLICATE}), ignored_why=_STICKY),
    Rule(Event.REJECT, frozenset({Status.QUEUED}), frozenset({Status.FAILED}),
         "a listing says the source cannot be downloaded (removed, private, geo-blocked) before any run",
         ignored=_ANY - {Status.QUEUED},
         ignored_why="only a track no run has touched yet: once worked on, what the run found is truer "
                     "than the listing"),
    Rule(Event.SET_ASIDE, _NOT_SET_ASIDE, frozenset({Status.DUPLICATE}),
         "dedup found a better copy the library keeps; the status before is kept for undo"),
    Rule(Event.UNDO, frozenset({Status.DUPLICATE}),
         frozenset({Status.QUEUED, Status.DONE, Status.FAILED, Status.NEEDS_REVIEW}),
         "`dedup --undo` gives the track back the status it had before (a running one as queued: no run "
         "is working on it any more)",
         ignored=_NOT_SET_ASIDE,
         ignored_why="a track no longer set aside has moved on since; its status is true"),
)}


def decide(current: Status | str, event: Event, target: Status | str | None = None, *,
           key: str | None = None) -> Status | None:
    """The status ``event`` moves a track in ``current`` to; None when the event leaves it
    alone on purpose. Raises ``TransitionRefused`` when the lifecycle does not allow it."""
    rule = RULES[Event(event)]
    current = Status(current)
    to = rule.resolve(target)
    if to is None:
        raise TransitionRefused(rule.event, current, Status(target),
                                f"{rule.event} leads only to {_listed(rule.targets, 'or')}", key)
    if current in rule.sources:
        return to
    if current in rule.ignored:
        return None
    raise TransitionRefused(rule.event, current, to if len(rule.targets) > 1 else None,
                            f"only a {_listed(rule.sources, 'or')} track can be", key)


def _listed(statuses: frozenset[Status], last: str) -> str:
    names = [str(s) for s in Status if s in statuses]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def before_set_aside(status: Status | str) -> Status:
    """The status to record for undo when a track is set aside: its own, but a running one
    as queued (no run will be working on it when it comes back)."""
    status = Status(status)
    return Status.QUEUED if status == Status.RUNNING else status


def transitions() -> dict[tuple[Status, Status], list[Event]]:
    """Every allowed move, by (from, to), with the events that make it: the table as a map."""
    moves: dict[tuple[Status, Status], list[Event]] = {}
    for rule in RULES.values():
        for source in sorted(rule.sources):
            for target in sorted(rule.targets):
                moves.setdefault((source, target), []).append(rule.event)
    return moves
