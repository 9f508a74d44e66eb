"""The SQLite storage `up` configures (music_pipeline.storage): Dagster's own files, with each
process keeping its event log connections open, and nothing a user sees changed by that."""

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from dagster import AssetKey, DagsterInstance, EventLogEntry, asset, materialize

from music_pipeline.instance import dagster_yaml, missing_settings, sqlite_storage_yaml
from music_pipeline.storage import WarmSqliteEventLogStorage

RUN_ID = "0e0e0e0e-1111-2222-3333-444444444444"


def _home(path: Path, warm: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    text = dagster_yaml(path)
    if not warm:  # Dagster's default storage, over the same files
        text = text.replace(sqlite_storage_yaml(path).rstrip(), "")
    (path / "dagster.yaml").write_text(text)
    return path


def _entry(message: str) -> EventLogEntry:
    return EventLogEntry(error_info=None, level=logging.INFO, user_message=message, run_id=RUN_ID,
                         timestamp=time.time(), step_key=None, job_name=None, dagster_event=None)


WRITER = textwrap.dedent("""
    import logging, sys, time
    from dagster import DagsterInstance, EventLogEntry
    instance = DagsterInstance.from_config(sys.argv[1])
    for line in sys.stdin:
        instance.event_log_storage.store_event(EventLogEntry(
            error_info=None, level=logging.INFO, user_message=line.strip(), run_id=sys.argv[2],
            timestamp=time.time(), step_key=None, job_name=None, dagster_event=None))
        print("stored", flush=True)
""")


def test_a_live_run_shows_while_its_process_keeps_the_connection_open(tmp_path: Path) -> None:
    """The UI follows a running run by watching its run file; a process that keeps its
    connection open must still make each write visible there at once, not at exit."""
    home = _home(tmp_path / "home")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(home), RUN_ID], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    seen: queue.Queue[str] = queue.Queue()
    try:
        writer.stdin.write("first\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "stored"
        with DagsterInstance.from_config(str(home)) as instance:
            storage = instance.event_log_storage
            assert isinstance(storage, WarmSqliteEventLogStorage)
            storage.watch(RUN_ID, None, lambda entry, _cursor: seen.put(entry.user_message))
            try:
                for message in ("second", "third"):
                    writer.stdin.write(f"{message}\n")
                    writer.stdin.flush()
                    assert writer.stdout.readline().strip() == "stored"
                    deadline = time.monotonic() + 10
                    got: list[str] = []
                    while message not in got and time.monotonic() < deadline:
                        with contextlib.suppress(queue.Empty):
                            got.append(seen.get(timeout=0.2))
                    assert message in got, f"{message!r} not seen while the writer runs (seen: {got})"
                    assert writer.poll() is None  # still running, connection still open
            finally:
                storage.end_watch(RUN_ID, next(iter(storage._watchers[RUN_ID]), None))
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)


@asset
def number() -> int:
    return 1


MATERIALIZE = textwrap.dedent("""
    import sys
    from dagster import DagsterInstance, materialize
    from music_pipeline_tests.test_storage import number
    with DagsterInstance.from_config(sys.argv[1]) as instance:
        assert materialize([number], instance=instance).success
""")


def test_the_files_are_dagsters_own_and_a_home_can_switch_either_way(tmp_path: Path) -> None:
    home = _home(tmp_path / "Music 🎵 home")  # any name a folder may have
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", MATERIALIZE, str(home)], cwd=repo, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # the process closed its connections: no WAL left behind beside the run files
    assert sorted(p.name for p in (home / "history" / "runs").iterdir() if not p.name.endswith(".db")) == []

    _home(home, warm=False)  # the same home, Dagster's default storage
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert len(instance.get_runs()) == 1
        assert instance.get_latest_materialization_event(AssetKey("number")) is not None
        assert materialize([number], instance=instance).success

    _home(home)  # and back
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, WarmSqliteEventLogStorage)
        assert len(instance.get_runs()) == 2
        assert len(instance.fetch_materializations(AssetKey("number"), limit=10).records) == 2


def _child(work) -> None:
    """Run ``work`` in this forked child and leave with its verdict, whatever happens."""
    code = 1
    try:
        signal.alarm(20)  # a lock inherited held would hang it for good
        code = 0 if work() is not False else 1
    finally:
        os._exit(code)


def test_no_connection_crosses_a_fork(tmp_path: Path) -> None:
    """SQLite keeps a process's file locks in memory: a child holding connections its parent
    opened trusts the parent's locks, and when the parent closed its last connection it
    deleted the index's WAL under the child, losing the child's next write."""
    home = _home(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        storage.add_dynamic_partitions("tracks", ["parent"])  # the index, as asset events go there
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        pid = os.fork()
        if pid == 0:
            def work() -> None:
                storage.add_dynamic_partitions("tracks", ["child"])
                os.write(from_child, b"1")
                os.read(to_child, 1)  # the parent has closed its connections
                storage.add_dynamic_partitions("tracks", ["child after the parent closed"])
            _child(work)
        os.read(to_parent, 1)
        storage.close_connections()  # as a parent's eviction, dispose or exit does
        os.write(from_parent, b"1")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    with DagsterInstance.from_config(str(home)) as instance:  # a fresh reader: what reached the file
        assert instance.get_dynamic_partitions("tracks") == ["parent", "child", "child after the parent closed"]


def test_a_fork_while_another_thread_holds_the_storage_does_not_hang_the_child(tmp_path: Path) -> None:
    home = _home(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        storage.store_event(_entry("parent before"))
        storage._db_lock.acquire()  # as another of the parent's threads might hold it at the fork
        pid = os.fork()
        if pid == 0:
            _child(lambda: storage.store_event(_entry("child")))
        storage._db_lock.release()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child waited for its parent's lock"
        storage.store_event(_entry("parent after"))
        messages = [r.event_log_entry.user_message for r in storage.get_records_for_run(RUN_ID).records]
        assert messages == ["parent before", "child", "parent after"]


def test_doctor_names_a_missing_or_moved_storage_setting(tmp_path: Path) -> None:
    home = _home(tmp_path / "home")
    assert missing_settings(home / "dagster.yaml") == []

    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "dagster.yaml").write_text((home / "dagster.yaml").read_text())
    [problem] = missing_settings(moved / "dagster.yaml")
    assert "was the home moved?" in problem and str(home) in problem

    _home(home, warm=False)  # a dagster.yaml written before this setting existed
    [problem] = missing_settings(home / "dagster.yaml")
    assert "WarmSqliteStorage" in problem and "0.4 CPU-s" in problem
