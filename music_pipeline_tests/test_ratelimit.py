"""The shared rate limiter across real processes (multiprocessing's spawn, like Dagster's
run workers and sensors): the rate holds over all of them together, a 429 in one pauses
all, and a killed process or a torn state file leaves the limiter usable."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from music_pipeline.core.sources.ratelimit import (
    RateLimitTimeout,
    SharedRateLimiter,
    _monotonic,
    _State,
)

SPAWN = multiprocessing.get_context("spawn")
#: Sleeps end a little late, never early; this much lateness is allowed between two stamps.
TOLERANCE = 0.03


def _acquire_many(path: str, rate: float, burst: int, count: int, barrier, stamps) -> None:
    limiter = SharedRateLimiter(Path(path), rate=rate, burst=burst)
    barrier.wait()
    for _ in range(count):
        limiter.acquire(timeout=30)
        stamps.put((os.getpid(), time.time()))


def _run(path: Path, processes: int, count: int, rate: float, burst: int) -> list[tuple[int, float]]:
    barrier, stamps = SPAWN.Barrier(processes), SPAWN.Queue()
    procs = [SPAWN.Process(target=_acquire_many, args=(str(path), rate, burst, count, barrier, stamps))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    got = [stamps.get(timeout=60) for _ in range(processes * count)]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    return sorted(got, key=lambda pid_stamp: pid_stamp[1])


def _assert_within_rate(times: list[float], rate: float, burst: int) -> None:
    """No window holds more than ``burst`` requests beyond what the rate allows."""
    for i in range(len(times)):
        for k in range(1, len(times) - i):
            assert times[i + k] - times[i] >= (k - burst) / rate - TOLERANCE, (i, k)


def test_four_processes_together_keep_to_the_rate_and_none_starves(tmp_path: Path) -> None:
    rate, burst = 10.0, 3
    got = _run(tmp_path / "home" / "notion.ratelimit", processes=4, count=15, rate=rate, burst=burst)
    times = [stamp for _pid, stamp in got]

    _assert_within_rate(times, rate, burst)
    # The burst at once, then one every 1/rate: 5.7 s for 60 (about 60/rate).
    total = times[-1] - times[0]
    assert (60 - burst) / rate - TOLERANCE <= total <= 60 / rate + 0.4, total
    # Slots go in turn: every process finishes near the end, none is left for last.
    last = {pid: stamp for pid, stamp in got}
    assert max(last.values()) - min(last.values()) < 1.0, last


def test_first_use_by_several_processes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.ratelimit"
    got = _run(path, processes=6, count=1, rate=10.0, burst=3)
    times = [stamp for _pid, stamp in got]
    assert len({pid for pid, _stamp in got}) == 6
    _assert_within_rate(times, 10.0, 3)
    assert times[-1] - times[0] >= 0.3 - TOLERANCE  # six through a burst of three: 3 slots of 0.1 s
    assert path.stat().st_size > 0


def _penalize(path: str, go, stamp) -> None:
    go.wait(10)
    SharedRateLimiter(Path(path), rate=2.0, burst=3).penalize(0.5)
    stamp.value = time.time()


def test_a_429_in_one_process_pauses_the_others(tmp_path: Path) -> None:
    path = tmp_path / "notion.ratelimit"
    limiter = SharedRateLimiter(path, rate=2.0, burst=3)
    for _ in range(3):  # the burst spent: the next slot is 0.5 s away
        limiter.acquire()
    go, stamp = SPAWN.Event(), SPAWN.Value("d", 0.0)
    other = SPAWN.Process(target=_penalize, args=(str(path), go, stamp))
    other.start()
    time.sleep(1.5)  # the other process is up and waiting for the signal; the bucket refilled
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()

    result: dict[str, float] = {}

    def waiter() -> None:  # already asleep for its slot when the 429 arrives
        result["waited"] = limiter.acquire()
        result["at"] = time.time()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.03)
    go.set()  # the other process has the 0.47 s left before that slot to report its 429
    other.join(10)
    thread.join(10)
    assert other.exitcode == 0
    assert stamp.value < result["at"]
    # its slot (0.5 s away) moved back by the pause (0.5 s), however late the 429 came before it
    assert 1.0 - TOLERANCE <= result["waited"] <= 1.0 + 0.2, result
    # The next request of anyone keeps to the rate after the pause, with no new burst.
    waited = limiter.acquire()
    assert 0.5 - TOLERANCE <= waited <= 0.5 + 0.1, waited
    # The same 429 seen by several processes at once pauses them once, not once each.
    limiter.penalize(0.8)
    limiter.penalize(0.8)
    waited = limiter.acquire()
    assert 0.8 - TOLERANCE <= waited <= 0.8 + 0.08, waited


def _wait_for_slot(path: str, ready) -> None:
    limiter = SharedRateLimiter(Path(path), rate=2.0, burst=1)
    ready.set()
    limiter.acquire()  # its slot is 0.5 s away: killed while asleep


def _hold_lock(path: str, ready) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the lock the limiter takes, held by a process then killed
    os.pwrite(fd, b"torn", 0)  # as if killed in the middle of writing the state
    ready.set()
    time.sleep(60)


def test_a_process_killed_while_waiting_or_holding_the_lock_leaves_the_limiter_usable(tmp_path: Path) -> None:
    path = tmp_path / "notion.ratelimit"
    limiter = SharedRateLimiter(path, rate=2.0, burst=1)
    limiter.acquire()

    ready = SPAWN.Event()
    victim = SPAWN.Process(target=_wait_for_slot, args=(str(path), ready))
    victim.start()
    ready.wait(10)
    time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    # Its slot is lost, not the limiter: the next one after it is taken.
    assert limiter.acquire(timeout=2) <= 1.0 + TOLERANCE

    ready = SPAWN.Event()
    holder = SPAWN.Process(target=_hold_lock, args=(str(path), ready))
    holder.start()
    ready.wait(10)
    killer = threading.Timer(0.3, os.kill, (holder.pid, signal.SIGKILL))
    killer.start()
    start = time.monotonic()
    limiter.acquire(timeout=2)  # blocked on the lock until the kernel frees it
    holder.join(10)
    assert 0.3 - TOLERANCE <= time.monotonic() - start < 2
    assert _State.unpack(path.read_bytes()) is not None  # the torn state was replaced


def test_a_timeout_raises_without_taking_a_slot(tmp_path: Path) -> None:
    limiter = SharedRateLimiter(tmp_path / "notion.ratelimit", rate=2.0, burst=1)
    limiter.acquire()
    start = time.monotonic()
    with pytest.raises(RateLimitTimeout, match="No request slot within 0.1 s"):
        limiter.acquire(timeout=0.1)
    assert time.monotonic() - start < 0.05  # known at once: no pointless sleep
    assert limiter.acquire() <= 0.5 + TOLERANCE  # the slot it gave up is still the next one


def _state_file(path: Path, tat_ahead: float, wall_offset: float) -> None:
    """A state written ``wall_offset`` seconds off today's clock, with ``tat_ahead`` seconds
    of wait still to come then."""
    wall = time.time() + wall_offset
    path.write_bytes(_State(wall + tat_ahead, 0.0, 0.0, 0.0, wall, _monotonic()).pack())


@pytest.mark.parametrize("step", [-86400.0, 86400.0], ids=["clock-set-back-a-day", "clock-set-forward-a-day"])
def test_a_clock_step_keeps_the_waits_as_long_as_they_were(tmp_path: Path, step: float) -> None:
    path = tmp_path / "notion.ratelimit"
    # Written before the clock was stepped by ``step``: what was left to wait was 0.3 s.
    _state_file(path, tat_ahead=0.3, wall_offset=-step)
    waited = SharedRateLimiter(path, rate=10.0, burst=1).acquire(timeout=1)
    assert 0.3 - TOLERANCE <= waited <= 0.3 + 0.1


def test_a_schedule_no_run_could_have_made_is_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "notion.ratelimit"
    _state_file(path, tat_ahead=30 * 86400.0, wall_offset=0.0)
    assert SharedRateLimiter(path).acquire(timeout=1) < 0.05


def test_context_manager_and_decorator(tmp_path: Path) -> None:
    limiter = SharedRateLimiter(tmp_path / "notion.ratelimit", rate=10.0, burst=1)
    calls: list[float] = []

    @limiter.limited
    def send(value: int) -> int:
        calls.append(time.monotonic())
        return value * 2

    assert [send(1), send(2)] == [2, 4]
    with limiter.slot() as waited:
        calls.append(time.monotonic())
    assert waited >= 0.1 - TOLERANCE
    assert calls[1] - calls[0] >= 0.1 - TOLERANCE


def _machine(env: dict, token: str, count: int, barrier, stamps) -> None:
    """One machine of a production instance: its own temporary folder and Dagster home, the
    limiter the Notion resource builds."""
    import tempfile

    os.environ.update(env)
    tempfile.tempdir = None  # this machine's TMPDIR
    from music_pipeline.resources import NotionResource

    api = NotionResource(token=token, tracks_db_id="x", rate=5.0).api()
    barrier.wait()
    for _ in range(count):
        api.limiter.acquire(timeout=30)
        stamps.put((os.getpid(), time.time()))


def test_two_machines_of_a_production_instance_share_one_limit(tmp_path: Path, postgres_server) -> None:
    from music_pipeline.instance import production_yaml
    from music_pipeline_tests.services import fresh_database

    database = fresh_database(postgres_server, "rate")
    token, machines, count = "ntn_shared_by_two_machines", 2, 6
    envs = []
    for name in ("a", "b"):
        home, tmp = tmp_path / name / "dagster_home", tmp_path / name / "tmp"
        home.mkdir(parents=True)
        tmp.mkdir()
        (home / "dagster.yaml").write_text(production_yaml())
        envs.append({**database.env, "DAGSTER_HOME": str(home), "TMPDIR": str(tmp)})
    barrier, stamps = SPAWN.Barrier(machines), SPAWN.Queue()
    procs = [SPAWN.Process(target=_machine, args=(env, token, count, barrier, stamps)) for env in envs]
    for proc in procs:
        proc.start()
    got = sorted((stamps.get(timeout=60) for _ in range(machines * count)), key=lambda pid_stamp: pid_stamp[1])
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert len({pid for pid, _ in got}) == machines
    _assert_within_rate([stamp for _, stamp in got], rate=5.0, burst=3)  # 5 a second for both together
    assert not [p for env in envs for p in Path(env["TMPDIR"]).rglob("*.rate")]  # no machine kept a schedule of its own
