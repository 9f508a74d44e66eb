"""Dagster's internals we rely on, checked against the installed release: every private symbol
behind the door (music_pipeline/platform/_dagster_internal.py) still exists and still has the
shape we use (the parameters we pass, the attributes and methods we call, the methods we
override). A release that moves or changes one fails here, fast, with a sentence naming the
symbol, what we rely on, and the module of ours to fix; run this file first when moving the
Dagster pin in pyproject.toml. Nothing here starts a Dagster process: storages and instances
are opened on temporary directories."""

import ast
import inspect
import re
import uuid
from contextlib import contextmanager
from pathlib import Path

import dagster
import pytest
from dagster import DagsterInstance, DagsterRun, DefaultRunLauncher, op

import music_pipeline
from music_pipeline.platform import _dagster_internal as door

PRODUCT = Path(music_pipeline.__file__).parent
DOOR = PRODUCT / "platform" / "_dagster_internal.py"


@contextmanager
def relying_on(name: str, what: str):
    """Yields the symbol ``name`` of the door; any failure inside becomes one sentence: which
    symbol, what we rely on in it, and which module of ours to fix."""
    symbol = door.SYMBOLS[name]
    try:
        value = symbol.load()
    except ImportError as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield value
    except Exception as err:  # noqa: BLE001 - whatever the release changed, said in one sentence
        pytest.fail(f"{door.installed()}: {symbol.where} changed: music_pipeline relies on {what}; fix "
                    f"{', '.join(symbol.used_by)} (through music_pipeline/platform/_dagster_internal.py). "
                    f"Found: {type(err).__name__}: {err}", pytrace=False)


def params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def has_params(fn, *names: str) -> None:
    missing = [n for n in names if n not in params(fn)]
    assert not missing, f"{getattr(fn, '__qualname__', fn)}{inspect.signature(fn)} lacks {missing}"


def overrides(ours: type, base: type, *names: str) -> None:
    """Each of ``names`` defined by ``ours`` still exists on Dagster's ``base`` with the same
    parameters (else ours is never called, or called with other arguments)."""
    for name in names:
        assert name in vars(ours), f"{ours.__name__}.{name} is not ours (the test is stale)"
        theirs = inspect.getattr_static(base, name, None)
        assert theirs is not None, f"{base.__name__}.{name} is gone: our override is never called"
        if isinstance(theirs, property):
            assert isinstance(vars(ours)[name], property), f"{base.__name__}.{name} is a property, ours is not"
            continue
        theirs, mine = getattr(base, name), getattr(ours, name)
        assert params(theirs) == params(mine), (f"{base.__name__}.{name}{inspect.signature(theirs)} "
                                                f"differs from our {inspect.signature(mine)}")


# -- the door itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(door.SYMBOLS))
def test_symbol_is_where_the_door_says(name):
    with relying_on(name, f"{name} being at {door.SYMBOLS[name].where}"):
        pass


def _door_imports() -> dict[str, tuple[str, str]]:
    """The door's imports for type checkers: our name -> (module, name there)."""
    found = {}
    for node in ast.walk(ast.parse(DOOR.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("dagster.", "dagster_")):
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def test_the_door_lists_every_symbol_it_imports_and_nothing_else():
    listed = {name: (s.module, s.name) for name, s in door.SYMBOLS.items()}
    assert _door_imports() == listed, "the door's TYPE_CHECKING imports and SYMBOLS disagree"
    assert set(door.__all__) >= set(door.SYMBOLS)
    for name, symbol in door.SYMBOLS.items():
        assert symbol.why and symbol.used_by, f"{name}: say who uses it and why"
        for module in symbol.used_by:
            text = (PRODUCT.parent / module).read_text()
            assert name in text, f"{module} does not use {name}, yet the door says it does"


PRIVATE = re.compile(r"""^\s*(from|import)\s+(dagster\._|dagster_celery\b)|["']dagster\._""", re.M)


def test_no_product_module_reaches_past_the_door():
    """Dagster's private modules (``dagster._…``, imported or named in a string) and every
    dagster-celery module are used through the door only; dagster-postgres only by its public
    package (``from dagster_postgres import …``)."""
    offenders = []
    for path in sorted(PRODUCT.rglob("*.py")):
        if path == DOOR:
            continue
        text = path.read_text()
        offenders += [f"{path.relative_to(PRODUCT.parent)}: {m.group(0).strip()}" for m in PRIVATE.finditer(text)]
        offenders += [f"{path.relative_to(PRODUCT.parent)}: {m.group(0).strip()}"
                      for m in re.finditer(r"^\s*(from|import)\s+dagster_postgres\.\w+", text, re.M)]
    assert not offenders, "import these through music_pipeline/platform/_dagster_internal.py:\n" + "\n".join(offenders)


def test_a_moved_symbol_is_one_sentence_naming_it():
    moved = door.Private("dagster._core.gone", "Thing", ("music_pipeline/instance.py",), "something we need")
    with pytest.raises(ImportError, match=r"has no dagster\._core\.gone\.Thing: music_pipeline uses it in "
                                          r"music_pipeline/instance\.py \(something we need\)"):
        moved.load()


# -- run launchers (music_pipeline/instance.py) ---------------------------------------------------


def test_run_health_types():
    with relying_on("WorkerStatus", "members RUNNING, FAILED and SUCCESS") as status:
        assert {"RUNNING", "FAILED", "SUCCESS"} <= set(status.__members__)
    with relying_on("CheckRunHealthResult", "CheckRunHealthResult(status, msg) with .status and .msg") as result:
        made = result(status.FAILED, "gone")
        assert (made.status, made.msg) == (status.FAILED, "gone")
    for name in ("LaunchRunContext", "ResumeRunContext"):
        with relying_on(name, "its .dagster_run") as context:
            assert "dagster_run" in context._fields


def test_our_launchers_override_what_dagster_calls():
    from music_pipeline.instance import DistributedRunLauncher, MonitoredRunLauncher

    with relying_on("CheckRunHealthResult", "DefaultRunLauncher asking check_run_worker_health(run)"):
        overrides(MonitoredRunLauncher, DefaultRunLauncher, "supports_check_run_worker_health",
                  "check_run_worker_health")
    with relying_on("CeleryRunLauncher", "DistributedRunLauncher overriding its launch, terminate, health, "
                                         "resume, dispose and _launch_celery_task_run(run, task_signature, "
                                         "routing_key), which launch_run calls") as celery:
        overrides(DistributedRunLauncher, celery, "register_instance", "launch_run", "terminate",
                  "_launch_celery_task_run", "supports_resume_run", "resume_run", "dispose",
                  "check_run_worker_health")
        for method in (celery.launch_run, celery.resume_run):
            assert "self._launch_celery_task_run(" in inspect.getsource(method), \
                f"{method.__qualname__} no longer sends its task through _launch_celery_task_run"
        launcher = celery(default_queue="dagster", broker="memory://", backend="cache+memory://")
        assert launcher.default_queue == "dagster" and hasattr(launcher.celery, "AsyncResult")
        assert isinstance(inspect.getattr_static(celery, "_instance"), property)


def test_celery_tags_and_priority():
    with relying_on("DAGSTER_CELERY_TASK_ID_TAG", "the tag value already on users' runs"
                                                 " (a new one orphans their Celery tasks)") as tag:
        assert tag == "dagster-celery/task_id"
    with relying_on("DAGSTER_CELERY_QUEUE_TAG", "a tag naming a run's queue") as tag:
        assert isinstance(tag, str) and tag.startswith("dagster-celery/")
    with relying_on("get_run_priority", "get_run_priority(run) -> int, 0 without a priority tag") as priority:
        assert params(priority) == ["run"]
        assert priority(DagsterRun(job_name="j", run_id=str(uuid.uuid4()))) == 0


def test_engine_event_data():
    with relying_on("EngineEventData", "EngineEventData(metadata) given to "
                                       "instance.report_engine_event(message, run, data, cls=)") as data:
        assert params(data)[0] == "metadata"
        assert set(data({"Celery Queue": "dagster"}).metadata) == {"Celery Queue"}
        has_params(DagsterInstance.report_engine_event, "message", "dagster_run", "engine_event_data", "cls")


# -- the warm SQLite storage (music_pipeline/storage.py) ----------------------------------------


def test_sqlite_event_log_storage_we_subclass(tmp_path):
    from music_pipeline.storage import WarmSqliteEventLogStorage

    with relying_on("SqliteEventLogStorage", "__init__(base_dir, inst_data), _connect(shard) (overridden: "
                                             "index_connection and run_connection go through it), _db_lock, "
                                             "_initialized_dbs, _initdb(engine), conn_string_for_shard(shard), "
                                             "wipe() and dispose()") as base:
        assert params(base.__init__)[:3] == ["self", "base_dir", "inst_data"]
        overrides(WarmSqliteEventLogStorage, base, "__init__", "_connect", "wipe", "dispose")
        has_params(base._initdb, "engine")
        assert len(params(base.conn_string_for_shard)) == 2
        storage = WarmSqliteEventLogStorage(str(tmp_path / "runs"))
        try:
            assert hasattr(storage._db_lock, "acquire") and isinstance(storage._initialized_dbs, set)
            with storage.index_connection():
                pass
            run_id = str(uuid.uuid4())
            with storage.run_connection(run_id):
                pass
            assert {door.INDEX_SHARD_NAME, run_id} <= set(storage._engines), \
                "index_connection/run_connection no longer go through _connect: our connections are not used"
        finally:
            storage.close_connections()
    with relying_on("INDEX_SHARD_NAME", "the index shard's name, a str"):
        assert isinstance(door.INDEX_SHARD_NAME, str)
    with relying_on("SQLITE_BUSY_TIMEOUT_SECONDS", "a busy timeout in seconds"):
        assert isinstance(door.SQLITE_BUSY_TIMEOUT_SECONDS, int | float)


def test_sqlite_storage_we_subclass_opens_the_same_files(tmp_path):
    from music_pipeline.storage import WarmSqliteStorage

    with relying_on("DagsterSqliteStorage", "its __init__ setting base_dir, _run_storage, _event_log_storage, "
                                            "_schedule_storage and _inst_data (ours sets the same, then "
                                            "DagsterStorage.__init__()), from_config_value(inst_data, "
                                            "config_value)") as base:
        overrides(WarmSqliteStorage, base, "__init__", "from_config_value")
        assert params(inspect.getmro(base)[1].__init__) == ["self"]
        theirs, ours = base(str(tmp_path)), WarmSqliteStorage(str(tmp_path))  # the same home
        try:
            assert set(vars(theirs)) == set(vars(ours)), f"attributes differ: {set(vars(theirs)) ^ set(vars(ours))}"
            assert (theirs.run_storage._conn_string, theirs.schedule_storage._conn_string,
                    theirs.event_log_storage._base_dir) == (ours.run_storage._conn_string,
                                                            ours.schedule_storage._conn_string,
                                                            ours.event_log_storage._base_dir)
        finally:
            ours.event_log_storage.close_connections()
    for name in ("runs_directory", "event_logs_directory", "schedule_directory"):
        with relying_on(name, "a function of base_dir returning a path under it") as where:
            assert len(params(where)) == 1 and where("/home").startswith("/home")
    for name in ("SqliteRunStorage", "SqliteScheduleStorage"):
        with relying_on(name, "from_local(base_dir)") as storage:
            assert params(storage.from_local)[0] == "base_dir"


# -- bulk runs (music_pipeline/automation/bulk.py) -------------------------------------------------


def test_an_instance_ref_without_compute_logs(tmp_path):
    with relying_on("InstanceRef", "DagsterInstance.get_ref()/from_ref(ref) and the ref's compute_logs_data, "
                                   "replaced with _replace") as ref_type, \
            relying_on("NoOpComputeLogManager", "its import path loading as a compute log manager") as noop, \
            relying_on("ConfigurableClassData", "ConfigurableClassData(module_name, class_name, config_yaml)"):
        assert "compute_logs_data" in ref_type._fields
        with DagsterInstance.from_config(str(tmp_path)) as instance:
            ref = door.without_compute_logs(instance.get_ref())
            assert isinstance(ref, ref_type)
            with DagsterInstance.from_ref(ref) as quiet:
                assert isinstance(quiet.compute_log_manager, noop)
                assert quiet.get_ref().run_storage_data == instance.get_ref().run_storage_data


def test_submitting_a_track_run_as_the_ui_does():
    from dagster._core.origin import JobPythonOrigin
    from dagster._core.remote_origin import RemoteJobOrigin
    from dagster._record import get_record_annotations, record

    with relying_on("copy_record", "copy_record(record, job_name=…) on a run's remote_job_origin (a record "
                                   "with job_name), job_code_origin._replace(job_name=…), and "
                                   "instance.create_run_for_job(job_def, run_id=, run_config=, tags=, status=, "
                                   "remote_job_origin=, job_code_origin=) then submit_run(run_id, workspace)") as copy:
        @record
        class Origin:
            job_name: str
            where: str

        assert copy(Origin(job_name="process_tracks", where="here"), job_name="process_track") == \
            Origin(job_name="process_track", where="here")
        assert "job_name" in get_record_annotations(RemoteJobOrigin)
        assert "job_name" in JobPythonOrigin._fields
        has_params(DagsterInstance.create_run_for_job, "job_def", "run_id", "run_config", "tags", "status",
                   "remote_job_origin", "job_code_origin")
        assert params(DagsterInstance.submit_run)[1:] == ["run_id", "workspace"]


def test_retry_tags():
    for name, value in (("PARENT_RUN_ID_TAG", "dagster/parent_run_id"), ("WILL_RETRY_TAG", "dagster/will_retry"),
                        ("ROOT_RUN_ID_TAG", "dagster/root_run_id"), ("RETRY_NUMBER_TAG", "dagster/retry_number"),
                        ("AUTO_RETRY_RUN_ID_TAG", "dagster/auto_retry_run_id")):
        with relying_on(name, f"run_retries tagging runs {value!r}") as tag:
            assert tag == value


def test_tags_we_name_ourselves_are_dagsters():
    """Tags music_pipeline writes or reads by name (automation/bulk.py): still what Dagster uses."""
    from dagster._core.events import RunFailureReason
    from dagster._core.storage import tags

    from music_pipeline.automation.bulk import PARTITION_TAG

    assert (PARTITION_TAG, "dagster/max_retries", "dagster/failure_reason") == (
        tags.PARTITION_NAME_TAG, tags.MAX_RETRIES_TAG, tags.RUN_FAILURE_REASON_TAG), \
        f"{door.installed()} renamed a run tag music_pipeline/automation/bulk.py names"
    assert RunFailureReason.UNEXPECTED_TERMINATION.value == "UNEXPECTED_TERMINATION", \
        "music_pipeline/automation/bulk.py recognises an interrupted track run by failure_reason UNEXPECTED_TERMINATION"


def test_asset_job_type():
    from music_pipeline.automation.jobs import process_track_job

    with relying_on("UnresolvedAssetJobDefinition", "define_asset_job returning one (automation/jobs.py bind)") as t:
        assert isinstance(process_track_job, t) and process_track_job.name == "process_track"


def test_instance_methods_we_call_that_dagster_does_not_mark_public():
    assert params(DagsterInstance.optimize_for_webserver)[1:] == ["statement_timeout", "pool_recycle",
                                                                   "max_overflow"], \
        f"{door.installed()}: DagsterInstance.optimize_for_webserver changed; fix music_pipeline/instance.py (pooled)"
    assert params(DagsterInstance.add_run_tags)[1:] == ["run_id", "new_tags"], \
        f"{door.installed()}: DagsterInstance.add_run_tags changed; fix music_pipeline/instance.py and workers.py"


# -- Celery workers (music_pipeline/workers.py) -----------------------------------------------------


def test_run_command_bodies():
    for name in ("execute_run_command_body", "resume_run_command_body"):
        with relying_on(name, f"{name}(instance=, run_id=, write_stream_fn=, set_exit_code_on_failure=) -> int "
                              "executing an existing run in this process") as body:
            assert sorted(params(body)) == ["instance", "run_id", "set_exit_code_on_failure", "write_stream_fn"]
    for name in ("ExecuteRunArgs", "ResumeRunArgs"):
        with relying_on(name, "its run_id and set_exit_code_on_failure") as args:
            has_params(args, "run_id", "set_exit_code_on_failure")
    with relying_on("unpack_value", "unpack_value(packed, as_type=a type or a tuple of types)") as unpack:
        has_params(unpack, "val", "as_type")


def test_celery_tasks_our_worker_serves():
    from music_pipeline import workers

    with relying_on("CeleryRunLauncher", "launch_run/resume_run sending the packed args as the task's "
                                         "execute_job_args_packed keyword") as celery:
        for method in (celery.launch_run, celery.resume_run):
            assert "execute_job_args_packed=pack_value(" in inspect.getsource(method)
        for task in (workers.execute_job, workers.resume_job):
            assert params(task.run)[-1] == "execute_job_args_packed"
    names = {"TASK_EXECUTE_JOB_NAME": "execute_job", "TASK_RESUME_JOB_NAME": "resume_job"}
    for name, value in names.items():
        with relying_on(name, f"the task name {value!r} (workers._tag_run compares it)") as task_name:
            assert task_name == value
    with relying_on("make_app", "make_app(app_args) -> a Celery app routing execute_job and resume_job") as make:
        assert params(make) == ["app_args"]
        app = make({"broker": "memory://", "backend": "cache+memory://"})
        assert set(names.values()) <= set(app.conf.task_routes)
    with relying_on("create_task", "create_task(celery_app) registering execute_plan") as create:
        assert params(create)[0] == "celery_app"
        assert create(app).name == "execute_plan"


def test_our_run_id_is_one_dagster_accepts():
    """make_new_run_id (ours, not Dagster's private one): a run executed under it keeps it."""
    @op
    def noop() -> None:
        pass

    @dagster.job
    def one() -> None:
        noop()

    run_id = door.make_new_run_id()
    assert one.execute_in_process(run_id=run_id).run_id == run_id, \
        f"{door.installed()} no longer accepts a UUID4 run id; fix make_new_run_id in the door"


def test_installed_dagster_is_the_pinned_one():
    """These contracts were checked against the release pyproject.toml pins: another one installed
    is untested (pyproject.toml says how to move the pin)."""
    import importlib.metadata
    import tomllib

    pyproject = tomllib.loads((PRODUCT.parent / "pyproject.toml").read_text())
    pins = dict(re.fullmatch(r"(dagster[a-z-]*)==(\S+)", dep).groups()
                for dep in pyproject["project"]["dependencies"] if dep.startswith("dagster"))
    assert {"dagster", "dagster-celery", "dagster-postgres", "dagster-webserver"} <= set(pins)
    installed = {name: importlib.metadata.version(name) for name in pins}
    assert installed == pins, f"installed {installed}, pyproject.toml pins {pins}: install the pinned release, " \
                              "or move the pin as pyproject.toml says (run this file on the new release first)"


def test_the_dagster_yaml_up_writes_names_classes_that_load(tmp_path):
    """dagster.yaml names Dagster's classes by their documented paths (``dagster.core.…``, which
    Dagster maps onto its private modules) and ours; all still load."""
    from dagster import QueuedRunCoordinator

    from music_pipeline.instance import MonitoredRunLauncher, dagster_yaml
    from music_pipeline.storage import WarmSqliteEventLogStorage

    (tmp_path / "dagster.yaml").write_text(dagster_yaml(tmp_path))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator), \
            f"{door.installed()}: run_coordinator dagster.core.run_coordinator.QueuedRunCoordinator no longer " \
            "loads; fix music_pipeline/instance.py (dagster_yaml, production_yaml)"
        assert isinstance(instance.run_launcher, MonitoredRunLauncher)
        assert isinstance(instance.event_log_storage, WarmSqliteEventLogStorage)
