"""Replays every ``workflow_*`` fixture on a real (in-process) Celery worker.

This proves the fixtures right, independently of the analyser: a workflow whose line range holds
an ``# expect:`` comment (POSITIVE) must really show, on Celery, what each expected rule says
happens, and every other workflow (NEGATIVE) must really complete with no failure anywhere.
The observations are made here, on the fixture's own code and tasks (the harness's confirmers
replay the analyser's data instead; ``verify`` is tested in tests/test_harness_runtime.py).

Conventions (see the fixture modules):

- ``fixtures/`` is put on ``sys.path``; ``fixtures/shop/tasks/billing.py`` is ``shop.tasks.billing``.
- Only modules that define a module-level ``workflow_*()`` function are imported.
- A workflow returns a canvas (applied here with ``.apply_async()``), or applies its canvas itself
  and returns the ``AsyncResult``/``GroupResult``, or raises synchronously (``typing=True`` checks
  arguments when a message is published). A CCL014 positive builds a canvas and returns nothing.
- A rule that reports a task's definition (CCL004 at the ``return``, CCL005 at the ``def``, CCL012
  and CCL023 at the swallowed call) is replayed by a workflow that uses the task and names the code
  on its ``def`` line: ``def workflow_x():  # replays: CCL004``. The code must be expected somewhere
  in the same module.

Where each workflow runs: every fixture app gets its own in-process worker (solo pool) on the
in-memory broker (one queue an app) and the cache result backend (``cache+memory://``), except
where the claim belongs to the broker or the backend (``_transport``): the ``redelivery`` app on
a real Redis broker with its own visibility timeout (CCL026; skipped when Redis is down), apps
whose backend waits for chords with ``celery.chord_unlock`` (``db+...``, ``file://``) on Celery's
file-system backend (CCL027: SQLAlchemy is not installed), apps configured with no result backend
with none (CCL008). A recorder (Celery's ``before_task_publish``, ``task_prerun`` and
``task_postrun`` signals, kept by root id) sees every message and run of the workflow.

What each positive must show, per expected code (observed on Celery 5.7 / kombu 5.7;
``OBSERVERS`` below). A workflow with several codes must show each:

- CCL001, CCL002, CCL019 (arguments that do not bind), a TypeError:
  - bad first link, group member, chord header, ``delay``/``apply_async``: raised synchronously
    by the publishing call;
  - bad later chain link, ``link=``/``.link()`` callback: the worker raises while publishing it,
    the PREVIOUS task is stored as FAILURE(TypeError) (and the rest of the chain is marked failed);
  - bad chord body: the body's result is FAILURE(``ChordError("Callback error: TypeError(...)")``);
  - bad errback: first the task's own exception is stored, then it is overwritten with the
    ``TypeError`` raised while sending the errback;
  - class-based tasks are not type-checked when published: the task itself fails with it.
- CCL003 independent chain: every link after the first was published by the worker while the
  link before it was running (serial: a group publishes all its members at once), and no link
  received the previous link's return value; the chain completes.
- CCL004 large result: a link's stored result and the message carrying it to the next link are
  both at least ``LARGE_BYTES`` (the payload confirmer's threshold), or it fails with EncodeError.
- CCL005 missing retry: against a refused connection the task ran once, ended FAILURE with the
  network error, and nothing ran after it.
- CCL006 wait in task: the task fails with ``RuntimeError: Never call result.get() within a
  task!``. ``start_worker`` turns that guard off for the whole process; a solo or prefork worker
  in its own process turns it on (``worker/components.py``), so it is turned on for that replay.
- CCL007 called, not a signature: the workflow raised synchronously AND the called task had
  already been sent, outside the workflow.
- CCL008 chord without results: starting it raises ``NotImplementedError`` (no backend), or
  (header tasks ignoring results) every header task ran and the body did not run: on the cache
  backend the last header task waits ``result_chord_join_timeout`` (3 s by default, 1 s here)
  and the body ends FAILURE(``ChordError: TimeoutError``); on a ``chord_unlock`` backend the
  body stays PENDING.
- CCL009 errback receives the task id: the errback ran with the failed task's id as its first
  argument.
- CCL010 callback on a group: ``apply_async(link=...)`` raises ``Cannot add link to group``, or
  the callback ran (or was refused) but never received the list of the members' results.
- CCL011 single-member group: the task after the group received a scalar, not a list.
- CCL012 swallowed retry: one task id ran twice, each run ended SUCCESS.
- CCL013 options as arguments: a TypeError naming the option, or the task ran with the option
  among its keyword arguments, at once.
- CCL014 canvas never applied: nothing was published within ``QUIET``.
- CCL015 not a task: ``AttributeError`` when the line runs.
- CCL016 task returns a canvas: the task ended SUCCESS with a signature (a dict) as its result,
  and no task of that canvas ran within ``QUIET``.
- CCL018 unserializable argument: ``EncodeError`` raised by the publishing call.
- CCL020 arguments to an immutable canvas: the values the canvas was applied with (recorded
  from the test's thread) reached no task, and it completed.
- CCL021 revoke the last only: the result's task is REVOKED, every earlier one ran SUCCESS.
- CCL022 consecutive groups, CCL023 swallowed replace: one task id ran twice.
- CCL024 serial map: one ``celery.map``/``celery.starmap`` task called the task on every item.
- CCL025 chain options: the first message carried the option (priority, expiry, time limit),
  no later message did; the chain completed.
- CCL026 countdown beyond the visibility timeout (Redis): one task id ran two times or more.
- CCL027 unbounded chord_unlock: ``celery.chord_unlock`` ran three times or more with no
  ``max_retries`` while the body stayed PENDING.

Not replayed here (``NOT_REPLAYED``, with the reason): CCL017, a race with the caller's database
transaction rather than a property of the workflow's run. A test keeps every other code replayed
by at least one positive workflow (``test_every_code_is_replayed_or_says_why``).

Near misses that do not complete are not ``workflow_*`` (an errback's task fails on purpose; a
revoked chain does not finish): their modules say so.
"""
from __future__ import annotations

import ast
import importlib
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    from expectations import expected_findings
except ImportError:  # tests/ became a package
    from tests.expectations import expected_findings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RULES = Path(__file__).resolve().parents[1] / "celery_chain_lint" / "rules"
TIMEOUT = 10.0
POLL = 0.02
QUIET = 0.5  # how long "nothing (more) happened" is watched (the workers poll every 10 ms)
CHORD_WAIT = 4.0  # how long a chord body that should never run is waited for
LARGE_BYTES = 16 * 1024  # harness/confirmers/payload.py's LARGE_BYTES

REPLAYS = re.compile(r"#\s*replays:\s*(?P<codes>CCL\d{3}(?:\s*,\s*CCL\d{3})*)")

# The findings whose workflows fail with a TypeError because arguments do not bind.
TYPE_ERROR_CODES = frozenset({"CCL001", "CCL002", "CCL019"})

# Codes no workflow here replays, and why. Every other code has at least one positive workflow.
NOT_REPLAYED = {
    "CCL017": "not a claim about a run of the workflow: the race is with the caller's database "
              "transaction (Django is not installed here)",
}


@dataclass(frozen=True)
class Workflow:
    module: str
    function: str
    path: str  # relative to FIXTURES
    first_line: int
    last_line: int
    codes: tuple[str, ...]  # expected finding codes within the function, and those it replays

    @property
    def positive(self) -> bool:
        return bool(self.codes)

    def __str__(self) -> str:
        return f"{self.path}:{self.first_line} {self.function}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(FIXTURES).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _replayed_codes(lines: list[str], node: ast.FunctionDef) -> set[str]:
    match = REPLAYS.search(lines[node.lineno - 1])
    return set(re.split(r"\s*,\s*", match["codes"])) if match else set()


def discover_workflows() -> list[Workflow]:
    expected = expected_findings(FIXTURES)
    workflows = []
    for path in sorted(FIXTURES.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        lines = text.splitlines()
        rel = path.relative_to(FIXTURES).as_posix()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("workflow_"):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                last = node.end_lineno or node.lineno
                codes = {code for (file, line, code) in expected
                         if file == rel and first <= line <= last}
                codes |= _replayed_codes(lines, node)
                workflows.append(
                    Workflow(_module_name(path), node.name, rel, first, last,
                             tuple(sorted(codes)))
                )
    return workflows


WORKFLOWS = discover_workflows()
WORKFLOW_MODULES = sorted({w.module for w in WORKFLOWS})


def _all_codes() -> set[str]:
    return {p.name[:6].upper() for p in RULES.glob("ccl[0-9][0-9][0-9]_*.py")}


def test_fixture_conventions():
    """Cheap static checks of the fixture set itself (no Celery involved)."""
    assert WORKFLOWS, "no workflow_* functions found under fixtures/"
    assert any(w.positive for w in WORKFLOWS) and any(not w.positive for w in WORKFLOWS)
    expected = expected_findings(FIXTURES)
    for w in WORKFLOWS:
        top = w.module.split(".")[0]
        assert top not in {"lookalikes", "never_imported"}, f"{w}: must not be replayed"
        assert (FIXTURES / top / "__init__.py").exists(), f"{w}: {top} is not a package"
        for code in w.codes:
            assert code in OBSERVERS, (
                f"{w}: no observation of {code} here ({NOT_REPLAYED.get(code)})")
    for path in FIXTURES.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        rel = path.relative_to(FIXTURES).as_posix()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("workflow_"):
                a = node.args
                assert not (a.posonlyargs or a.args or a.vararg or a.kwonlyargs or a.kwarg), (
                    f"{path}:{node.lineno} {node.name} must take no parameters"
                )
                for code in _replayed_codes(text.splitlines(), node):
                    assert any(f == rel and c == code for (f, _, c) in expected), (
                        f"{path}:{node.lineno} replays {code}, which {rel} does not expect"
                    )


def test_every_code_is_replayed_or_says_why():
    replayed = {code for w in WORKFLOWS for code in w.codes}
    codes = _all_codes()
    assert codes, RULES
    assert set(NOT_REPLAYED) <= codes
    for code in sorted(codes):
        if code in NOT_REPLAYED:
            assert code not in replayed, f"{code} is replayed: remove it from NOT_REPLAYED"
        else:
            assert code in replayed, f"{code}: no positive workflow replays it"
            assert code in OBSERVERS, code


# --- what the worker did -----------------------------------------------------------------------


def _size(value) -> int | None:
    from kombu.utils.json import dumps

    try:
        return len(dumps(value))
    except Exception:  # noqa: BLE001 - unserializable: no size
        return None


@dataclass
class Published:
    task: str
    id: str
    root: str
    args: tuple
    kwargs: dict
    size: int | None
    at: float
    from_test: bool  # published by the test's thread (not by the worker)
    priority: object
    expires: object
    timelimit: object
    routing_key: str | None = None


@dataclass
class Ran:
    task: str
    id: str
    root: str
    args: tuple
    kwargs: dict
    start: float
    end: float | None = None
    state: str | None = None
    retval: object = None


@dataclass
class Recorder:
    """Messages published and task runs, from Celery's signals (both threads)."""

    published: list[Published] = field(default_factory=list)
    runs: list[Ran] = field(default_factory=list)
    applied: list[tuple] = field(default_factory=list)  # canvas (args, kwargs) from the test
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.published.clear()
            self.runs.clear()
            self.applied.clear()

    def on_publish(self, sender=None, body=None, headers=None, properties=None,
                   routing_key=None, **_):
        headers, properties = headers or {}, properties or {}
        args, kwargs = (body[0], body[1]) if isinstance(body, (tuple, list)) else ((), {})
        entry = Published(
            task=sender, id=headers.get("id"), root=headers.get("root_id") or headers.get("id"),
            args=tuple(args or ()), kwargs=dict(kwargs or {}),
            size=_size(body), at=time.monotonic(),
            from_test=threading.current_thread() is threading.main_thread(),
            priority=properties.get("priority"), expires=headers.get("expires"),
            timelimit=tuple(headers.get("timelimit") or (None, None)),
            routing_key=routing_key,
        )
        with self.lock:
            self.published.append(entry)

    def on_prerun(self, task_id=None, task=None, args=None, kwargs=None, **_):
        with self.lock:
            root = getattr(task.request, "root_id", None) or task_id
            self.runs.append(Ran(task.name, task_id, root, tuple(args or ()), dict(kwargs or {}),
                                 time.monotonic()))

    def on_postrun(self, task_id=None, retval=None, state=None, **_):
        with self.lock:
            for run in reversed(self.runs):
                if run.id == task_id and run.end is None:
                    run.end, run.state, run.retval = time.monotonic(), state, retval
                    break

    def copy(self):
        """What belongs to the workflows the test's thread started since reset()."""
        with self.lock:
            roots = {p.root for p in self.published if p.from_test}
            roots |= {p.id for p in self.published if p.from_test}
            return ([p for p in self.published if p.root in roots],
                    [r for r in self.runs if r.root in roots])


RECORDER = Recorder()


def _record_canvas_application():
    """Record the arguments a canvas is applied with by the test's thread (CCL020)."""
    from celery import canvas

    originals = {}
    for cls in (canvas.Signature, canvas._chain, canvas.group, canvas._chord):
        original = cls.__dict__["apply_async"]
        originals[cls] = original

        def apply_async(self, args=None, kwargs=None, *rest, __original=original, **options):
            if threading.current_thread() is threading.main_thread() and not RECORDER.applied:
                RECORDER.applied.append((tuple(args or ()), dict(kwargs or {})))
            return __original(self, args, kwargs, *rest, **options)

        cls.apply_async = apply_async
    return originals


# --- the worker ---------------------------------------------------------------------------


def _fixture_apps():
    from celery import Celery

    tops = {p.name for p in FIXTURES.iterdir() if (p / "__init__.py").exists()}
    apps = []
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in tops:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Celery) and all(value is not a for a in apps):
                apps.append(value)
    return apps


def _own_app_is_current_step():
    from celery import bootsteps

    class OwnAppIsCurrent(bootsteps.StartStopStep):
        """The worker's threads (its own, and its timer's, which runs ETA tasks under the solo
        pool) take the worker's app as their current app, which traces the task by name:
        ``celery.chord_unlock``, in every app's registry, must be this app's."""

        requires = ("celery.worker.components:Timer",)

        def start(self, worker):
            worker.app.set_current()
            worker.timer.call_after(0, worker.app.set_current)

    return OwnAppIsCurrent


# Apps whose claim is the real transport's: CCL026's redelivery is kombu's Redis transport's.
ON_REDIS = {"redelivery"}
REDIS_URL = "redis://127.0.0.1:6379/12"
# Result backends that wait for a chord's header with celery.chord_unlock (no native join), as
# the CCL027 rule lists them: replayed on Celery's file-system backend, which waits the same way
# (SQLAlchemy, for db+..., is not installed here).
CHORD_UNLOCK_SCHEMES = {"db", "database", "file"}


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _transport(app, redis_up: bool, results_dir: Path) -> dict:
    """The broker and backend a fixture app runs on here.

    In memory (one queue an app: the memory transport is shared by the whole process; polled
    every 10 ms rather than once a second) with the cache backend, except where the claim is
    the broker's (``ON_REDIS``) or the backend's (``CHORD_UNLOCK_SCHEMES``; an app configured
    with no result backend keeps none).

    Chords wait less than Celery's defaults, as the harness's own sessions do: the cache
    backend's join of a header whose results were never stored gives up after 1 s (3 s by
    default; a stored header is joined at once, whatever the bound), and ``celery.chord_unlock``
    polls every 0.2 s (1 s by default), so a CCL008 or CCL027 positive shows itself in a
    second instead of three.
    """
    backend = str(app.conf.result_backend or "")
    scheme = backend.split("://")[0].split("+")[0]
    settings = {
        "broker_url": "memory://",
        "result_backend": "cache+memory://",
        "task_default_queue": f"fixtures.{app.main}",
        "broker_transport_options": {"polling_interval": 0.01},
        "result_chord_join_timeout": 1.0,
        "result_chord_retry_interval": 0.2,
    }
    if app.main in ON_REDIS and redis_up:
        settings.update(
            broker_url=REDIS_URL,
            task_default_queue=f"fixtures.{app.main}.{uuid.uuid4().hex[:8]}",
            # The app's own visibility timeout is the point.
            broker_transport_options=dict(app.conf.broker_transport_options or {}),
        )
    if not backend:
        # No result backend in the app's own configuration: that is the claim (CCL008).
        settings["result_backend"] = None
    if scheme in CHORD_UNLOCK_SCHEMES:
        directory = results_dir / app.main
        directory.mkdir()
        settings["result_backend"] = f"file://{directory}"
    return settings


@pytest.fixture(scope="module")
def fixture_apps():
    pytest.importorskip("celery")
    from celery import signals
    from celery.contrib.testing.worker import start_worker

    from celery import _state

    # Importing the fixtures registers their shared tasks with every app created later (Celery's
    # app finalizers): later tests' apps (verify's sessions) must not get them, nor this
    # module's current and default app.
    finalizers = set(_state._on_app_finalizers)
    default_app, current_app = _state.default_app, getattr(_state._tls, "current_app", None)
    modules = set(sys.modules)
    sys.path.insert(0, str(FIXTURES))
    signals.before_task_publish.connect(RECORDER.on_publish, weak=False)
    signals.task_prerun.connect(RECORDER.on_prerun, weak=False)
    signals.task_postrun.connect(RECORDER.on_postrun, weak=False)
    originals = _record_canvas_application()
    own_app_is_current = _own_app_is_current_step()
    try:
        for name in WORKFLOW_MODULES:
            importlib.import_module(name)
        apps = _fixture_apps()
        assert apps, "no Celery app found in the fixture modules"
        redis_up = _port_open(6379)
        results_dir = Path(tempfile.mkdtemp(prefix="ccl-fixture-results-"))
        for app in apps:
            app.conf.update(_transport(app, redis_up, results_dir))
        for app in apps:
            # A worker process has one app, its current app; here, several run in one process
            # (Celery's trace.setup_worker_optimizations: "only a single app can be used for
            # workers running in the same process"): make each worker's threads' current app
            # its own (a task is traced, and a class-based one routed, by the current app; the
            # main thread's stays the last started).
            app.steps["worker"].add(own_app_is_current)
            app.conf.update(
                task_always_eager=False,
                broker_connection_retry_on_startup=False,
            )
        with ExitStack() as stack:
            for app in apps:
                stack.enter_context(
                    start_worker(
                        app,
                        pool="solo",
                        concurrency=1,
                        perform_ping_check=False,
                        loglevel="ERROR",
                        shutdown_timeout=10.0,
                    )
                )
            # The last started app is the current one: shared_task proxies resolve to it.
            yield apps
            for app in apps:
                if app.main in ON_REDIS and redis_up:
                    with app.connection_for_write() as connection:
                        connection.default_channel.queue_purge(app.conf.task_default_queue)
    finally:
        shutil.rmtree(results_dir, ignore_errors=True)
        for cls, original in originals.items():
            cls.apply_async = original
        signals.before_task_publish.disconnect(RECORDER.on_publish)
        signals.task_prerun.disconnect(RECORDER.on_prerun)
        signals.task_postrun.disconnect(RECORDER.on_postrun)
        sys.path.remove(str(FIXTURES))
        _state._on_app_finalizers.intersection_update(finalizers)
        _state.set_default_app(default_app)
        _state._tls.current_app = current_app
        tops = {p.name for p in FIXTURES.iterdir() if (p / "__init__.py").exists()}
        for name in set(sys.modules) - modules:
            if name.split(".")[0] in tops:
                del sys.modules[name]


# --- observing a workflow ----------------------------------------------------------------------


def _snapshot(root) -> dict[str, tuple[str, object]]:
    """{task id: (state, result)} for every node reachable from root.

    Walks parents, group members and, once a node succeeded, its children (link callbacks).
    States are read from the backend on every call: ``AsyncResult`` caches the first ready
    state it sees, and an errback failure overwrites an already stored FAILURE.
    """
    from celery.result import AsyncResult, ResultSet, result_from_tuple

    seen, states, todo = set(), {}, [root]
    while todo:
        node = todo.pop()
        if node is None:
            continue
        if isinstance(node, AsyncResult):
            if node.id in states:
                continue
            meta = node.backend.get_task_meta(node.id, cache=False)
            states[node.id] = (meta["status"], meta.get("result"))
            todo.append(node.parent)
            if meta["status"] == "SUCCESS":
                todo.extend(result_from_tuple(c, node.app) for c in meta.get("children") or ())
        elif isinstance(node, ResultSet):  # GroupResult
            if id(node) not in seen:
                seen.add(id(node))
                todo.append(getattr(node, "parent", None))
                todo.extend(node.results)
    return states


def _describe(exc) -> str:
    return f"{type(exc).__name__}: {exc}"


def _is_type_error(exc) -> bool:
    # A chord body's TypeError is wrapped: ChordError("Callback error: TypeError(...)").
    return isinstance(exc, TypeError) or "TypeError" in repr(exc)


def _states(snapshot) -> dict[str, str]:
    return {task_id: state for task_id, (state, _) in snapshot.items()}


@dataclass
class Replay:
    """One workflow run: what it returned or raised, and what the worker did meanwhile."""

    workflow: Workflow
    result: object
    raised: BaseException | None

    def snapshot(self):
        return _snapshot(self.result) if self.result is not None else {}

    def failures(self, snapshot=None) -> dict[str, object]:
        snapshot = self.snapshot() if snapshot is None else snapshot
        return {i: value for i, (state, value) in snapshot.items() if state == "FAILURE"}

    def settle(self, timeout=TIMEOUT, until=None):
        """Poll until everything succeeded, something failed, until() holds, or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.snapshot()
            if until is not None and until(self):
                return snapshot
            if until is None and snapshot and (
                self.failures(snapshot)
                or all(state == "SUCCESS" for state, _ in snapshot.values())
            ):
                return snapshot
            if time.monotonic() > deadline:
                return snapshot
            time.sleep(POLL)

    def completed(self) -> dict[str, str]:
        """Assert the workflow completed with no failure; its states."""
        assert self.raised is None, f"raised {_describe(self.raised)}"
        snapshot = self.settle()
        failures = self.failures(snapshot)
        assert not failures, f"failed: { {k: _describe(v) for k, v in failures.items()} }"
        assert snapshot and all(s == "SUCCESS" for s, _ in snapshot.values()), (
            f"did not complete within {TIMEOUT}s; states: {_states(snapshot)}"
        )
        return _states(snapshot)

    def quiet(self, seconds=QUIET) -> None:
        time.sleep(seconds)

    @property
    def published(self):
        return RECORDER.copy()[0]

    @property
    def runs(self):
        return RECORDER.copy()[1]


def _run(workflow: Workflow) -> Replay:
    """Call the workflow and apply what it returns."""
    from celery.canvas import Signature
    from celery.result import AsyncResult, ResultSet

    function = getattr(importlib.import_module(workflow.module), workflow.function)
    try:
        value = function()
        if isinstance(value, Signature):
            value = value.apply_async()
    except Exception as exc:  # noqa: BLE001 - the failure is the observation
        return Replay(workflow, None, exc)
    if value is None and workflow.codes == ("CCL014",):
        return Replay(workflow, None, None)
    assert isinstance(value, (AsyncResult, ResultSet)), (
        f"{workflow}: returned {value!r}; expected a canvas or a result"
    )
    return Replay(workflow, value, None)


# --- the observations, one a rule ----------------------------------------------------------------


def observe_type_error(replay: Replay) -> str:
    if replay.raised is not None:
        assert _is_type_error(replay.raised), f"raised {_describe(replay.raised)}, not a TypeError"
        return f"raised synchronously: {_describe(replay.raised)}"
    others = {}
    deadline = time.monotonic() + TIMEOUT
    while True:
        snapshot = replay.snapshot()
        for task_id, value in replay.failures(snapshot).items():
            if _is_type_error(value):
                return f"a node failed: {_describe(value)}"
            others[task_id] = _describe(value)
        done = all(state == "SUCCESS" for state, _ in snapshot.values())
        if done or time.monotonic() > deadline:
            raise AssertionError(f"no TypeError within {TIMEOUT}s; other failures: "
                                 f"{others or 'none'}; states: {_states(snapshot)}")
        time.sleep(POLL)


def observe_independent_chain(replay: Replay) -> str:
    replay.completed()
    published, runs = replay.published, replay.runs
    assert len(runs) >= 2, f"a chain of one task? runs: {runs}"
    runs.sort(key=lambda r: r.start)
    by_id = {p.id: p for p in published}
    for before, after in zip(runs, runs[1:]):
        sent = by_id[after.id]
        assert not sent.from_test and before.start <= sent.at <= (before.end or sent.at), (
            f"{after.task}{after.args} was not published while {before.task} ran: not serial"
        )
        assert before.retval is None or before.retval not in after.args, (
            f"{after.task}{after.args} received {before.task}'s result {before.retval!r}"
        )
    return (f"{len(runs)} tasks, each published when the one before it ran, none "
            f"receiving its result: {[f'{r.task}{r.args}' for r in runs]}")


def observe_large_result(replay: Replay) -> str:
    if replay.raised is not None:
        assert "EncodeError" in repr(replay.raised) or "serializ" in str(replay.raised)
        return f"raised {_describe(replay.raised)}"
    snapshot = replay.settle()
    encode = [v for v in replay.failures(snapshot).values() if "EncodeError" in repr(v)]
    if encode:
        return f"a link failed: {_describe(encode[0])}"
    runs, published = replay.runs, replay.published
    large = [r for r in runs if (_size(r.retval) or 0) >= LARGE_BYTES]
    assert large, f"no result of {LARGE_BYTES:,} bytes or more: " + ", ".join(
        f"{r.task}: {_size(r.retval)}" for r in runs)
    carrying = [p for p in published if not p.from_test and (p.size or 0) >= LARGE_BYTES]
    assert carrying, f"{large[0].task}'s result was not sent on in a message"
    return (f"{large[0].task} returned {_size(large[0].retval):,} bytes serialized; "
            f"{carrying[0].task}'s message was {carrying[0].size:,} bytes")


def observe_missing_retry(replay: Replay) -> str:
    assert replay.raised is None, f"raised {_describe(replay.raised)}"
    snapshot = replay.settle()
    replay.quiet(QUIET / 2)
    network = {i: v for i, v in replay.failures(snapshot).items()
               if isinstance(v, OSError) or "URLError" in repr(v) or "onnection" in repr(v)}
    assert network, f"no network failure; states: {_states(snapshot)}"
    runs = replay.runs
    # A chain marks its later links failed too: the task that failed is the one that ran.
    ran = [i for i in network if any(r.id == i for r in runs)]
    assert len(ran) == 1, f"{len(ran)} tasks that ran failed with a network error"
    failed_id, error = ran[0], network[ran[0]]
    attempts = [r for r in runs if r.id == failed_id]
    assert len(attempts) == 1, f"the failing task ran {len(attempts)} times"
    later = [r for r in runs if r.start > attempts[0].start]
    assert not later, f"tasks ran after the failure: {[r.task for r in later]}"
    return f"{attempts[0].task} ran once and failed: {_describe(error)}; nothing ran after it"


def observe_wait_in_task(replay: Replay) -> str:
    assert replay.raised is None, f"raised {_describe(replay.raised)}"
    snapshot = replay.settle()
    errors = [v for v in replay.failures(snapshot).values()
              if "Never call result.get() within a task" in str(v)]
    assert errors, f"no task refused to wait; states: {_states(snapshot)}"
    return f"the task failed: {_describe(errors[0])}"


def observe_called(replay: Replay) -> str:
    assert replay.raised is not None, "the workflow did not fail when built or applied"
    sent = [p for p in replay.published if p.from_test]
    assert sent, f"raised {_describe(replay.raised)}, but no task had been sent"
    return (f"{len(sent)} message(s) sent outside the workflow ({sent[0].task}), then "
            f"{_describe(replay.raised)}")


def observe_chord_without_results(replay: Replay) -> str:
    if replay.raised is not None:
        assert isinstance(replay.raised, NotImplementedError), _describe(replay.raised)
        return f"raised {_describe(replay.raised)}"
    body = replay.result.id
    backend = replay.result.backend

    def body_settled(r: Replay) -> bool:
        return any(run.id == body for run in r.runs) or \
            sum(run.task == "celery.chord_unlock" for run in r.runs) >= 3 or \
            backend.get_task_meta(body, cache=False)["status"] != "PENDING"

    # On the cache backend the last header task waits result_chord_join_timeout (1 s here) for
    # the results that were never stored, then fails the body with ChordError(TimeoutError); on
    # a chord_unlock backend the unlock task polls every 0.2 s here: three polls are enough.
    replay.settle(timeout=CHORD_WAIT, until=body_settled)
    published, runs = replay.published, replay.runs
    header = [p for p in published if p.id != body and p.task != "celery.chord_unlock"]
    ran = {r.id for r in runs}
    assert header and all(p.id in ran for p in header), "the header did not run"
    assert body not in ran, "the chord's body ran"
    meta = backend.get_task_meta(body, cache=False)
    return (f"the {len(header)} header tasks ran, the body did not (state {meta['status']}"
            + (f": {_describe(meta['result'])})" if meta["status"] == "FAILURE" else ")"))


def observe_errback_gets_id(replay: Replay) -> str:
    def errback_ran(r: Replay) -> bool:
        failed = set(r.failures())
        return any(run.args and run.args[0] in failed for run in r.runs)

    replay.settle(until=errback_ran)
    failed = set(replay.failures())
    assert failed, "no task failed"
    called = [run for run in replay.runs if run.args and run.args[0] in failed]
    assert called, (f"no errback ran with the failed task's id; runs: {replay.runs}; sent: "
                    f"{[(p.task, p.routing_key) for p in replay.published]}")
    return f"{called[0].task} ran with {called[0].args!r}: the failed task's id first"


def observe_group_callback(replay: Replay) -> str:
    if replay.raised is not None:
        assert "Cannot add link to group" in str(replay.raised), _describe(replay.raised)
        return f"raised {_describe(replay.raised)}"
    replay.settle()
    replay.quiet(QUIET / 2)
    runs, published = replay.runs, replay.published
    results = [repr(r.retval) for r in runs if r.retval is not None]

    def is_the_list(value) -> bool:
        return (isinstance(value, list) and len(value) >= 2
                and all(repr(v) in results for v in value))

    got_list = [p for p in published if any(is_the_list(a) for a in p.args)]
    assert not got_list, f"{got_list[0].task} received the list of results"
    callbacks = [p for p in published if not p.from_test]
    return ("no task received the list of the members' results; sent by the worker: "
            f"{[f'{p.task}{p.args}' for p in callbacks]}")


def observe_single_member_group(replay: Replay) -> str:
    assert replay.raised is None, f"raised {_describe(replay.raised)}"
    last = replay.result.id
    replay.settle(until=lambda r: any(run.id == last for run in r.runs))
    ran = [run for run in replay.runs if run.id == last]
    assert ran, "the task after the group never ran"
    assert ran[0].args and not isinstance(ran[0].args[0], list), (
        f"{ran[0].task} received {ran[0].args[0]!r}")
    return f"{ran[0].task} received {ran[0].args[0]!r}, the member's result itself"


OPTIONS = {"countdown", "eta", "expires", "queue", "priority", "routing_key", "exchange",
           "time_limit", "soft_time_limit", "retry", "link", "link_error", "serializer"}


def observe_options_as_arguments(replay: Replay) -> str:
    if replay.raised is not None:
        assert isinstance(replay.raised, TypeError) and any(
            f"'{o}'" in str(replay.raised) for o in OPTIONS), _describe(replay.raised)
        return f"raised {_describe(replay.raised)}"
    started = time.monotonic()

    def option_taken(r: Replay) -> bool:
        return any(OPTIONS & set(run.kwargs) for run in r.runs) or bool(r.failures())

    snapshot = replay.settle(until=option_taken)
    typed = [v for v in replay.failures(snapshot).values() if _is_type_error(v)]
    if typed:
        return f"a node failed: {_describe(typed[0])}"
    taken = [run for run in replay.runs if OPTIONS & set(run.kwargs)]
    assert taken, f"no task received an option as an argument; runs: {replay.runs}"
    return (f"{taken[0].task} ran after {taken[0].start - started:.2f}s with "
            f"{ {k: taken[0].kwargs[k] for k in OPTIONS & set(taken[0].kwargs)} } as arguments")


def observe_never_applied(replay: Replay) -> str:
    assert replay.raised is None, f"raised {_describe(replay.raised)}"
    replay.quiet()
    assert not replay.published and not replay.runs, f"sent: {replay.published}"
    return f"nothing was sent nor run within {QUIET}s"


def observe_not_a_task(replay: Replay) -> str:
    assert isinstance(replay.raised, AttributeError), (
        f"expected an AttributeError, got {replay.raised!r}")
    return f"raised {_describe(replay.raised)}"


def observe_returns_canvas(replay: Replay) -> str:
    assert replay.raised is None, f"raised {_describe(replay.raised)}"
    states = replay.completed()
    replay.quiet()
    meta = replay.result.backend.get_task_meta(replay.result.id, cache=False)
    assert isinstance(meta["result"], dict) and "task" in meta["result"], meta["result"]
    runs = replay.runs
    assert len(runs) == 1, f"other tasks ran: {[r.task for r in runs]}"
    return (f"{runs[0].task} ended {states[replay.result.id]} with a "
            f"{meta['result']['task']} signature as its result; nothing else ran")


def observe_unserializable(replay: Replay) -> str:
    if replay.raised is not None:
        assert "EncodeError" in repr(replay.raised) or "not JSON serializable" in str(
            replay.raised), _describe(replay.raised)
        return f"raised {_describe(replay.raised)}"
    snapshot = replay.settle()
    errors = [v for v in replay.failures(snapshot).values() if "EncodeError" in repr(v)]
    assert errors, f"no EncodeError; states: {_states(snapshot)}"
    return f"a task failed: {_describe(errors[0])}"


def observe_arguments_dropped(replay: Replay) -> str:
    replay.completed()
    assert RECORDER.applied, "the canvas was not applied by the workflow"
    args, kwargs = RECORDER.applied[0]
    given = [*args, *kwargs.values()]
    assert given, "the canvas was applied with no arguments"
    runs = replay.runs
    reached = [r for r in runs if any(v in r.args or v in r.kwargs.values() for v in given)]
    assert not reached, f"{given} reached {[f'{r.task}{r.args}' for r in reached]}"
    return (f"applied with {given}; the tasks ran with "
            f"{[f'{r.task}{r.args}' for r in runs]}: the values reached none")


def observe_id_ran_twice(replay: Replay) -> str:
    def twice(r: Replay) -> list[str]:
        ids = [run.id for run in r.runs]
        return sorted({i for i in ids if ids.count(i) > 1})

    replay.settle(until=lambda r: bool(twice(r)))
    repeated = twice(replay)
    assert repeated, f"every task id ran once: {[(r.task, r.id[:8]) for r in replay.runs]}"
    runs = [r for r in replay.runs if r.id == repeated[0]]
    return f"task id {repeated[0]} ran {len(runs)} times: {[f'{r.task}{r.args}' for r in runs]}"


def observe_retry_swallowed(replay: Replay) -> str:
    evidence = observe_id_ran_twice(replay)
    replay.settle(until=lambda r: all(run.end is not None for run in r.runs))
    ids = [run.id for run in replay.runs]
    runs = [run for run in replay.runs if ids.count(run.id) > 1]
    assert all(run.state == "SUCCESS" for run in runs), [run.state for run in runs]
    return f"{evidence}, each run ended SUCCESS"


def observe_serial_map(replay: Replay) -> str:
    replay.completed()
    serial = [run for run in replay.runs if run.task in {"celery.map", "celery.starmap"}
              and len(run.kwargs.get("it") or (run.args[1:2] or [()])[0]) >= 2]
    assert serial, f"no map/starmap task ran several items: {[r.task for r in replay.runs]}"
    items = serial[0].kwargs.get("it") or serial[0].args[1]
    return (f"{len(replay.runs)} task(s) ran; {serial[0].task} called the task on "
            f"{len(items)} items one after another")


def observe_unbounded_chord_unlock(replay: Replay) -> str:
    assert replay.raised is None, f"raised {_describe(replay.raised)}"
    body = replay.result.id

    def unlocks(r: Replay) -> list[Ran]:
        return [run for run in r.runs if run.task == "celery.chord_unlock"]

    replay.settle(timeout=CHORD_WAIT + 2, until=lambda r: len(unlocks(r)) >= 3)
    runs = unlocks(replay)
    assert len(runs) >= 3, f"celery.chord_unlock ran {len(runs)} times"
    assert all(run.kwargs.get("max_retries") is None for run in runs), runs[0].kwargs
    meta = replay.result.backend.get_task_meta(body, cache=False)
    assert meta["status"] == "PENDING" and all(run.id != body for run in replay.runs), meta
    return (f"celery.chord_unlock ran {len(runs)} times in {runs[-1].start - runs[0].start:.1f}s "
            "with no max_retries; the body is still PENDING")


READY = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


def observe_revoke_last_only(replay: Replay) -> str:
    assert replay.raised is None, f"raised {_describe(replay.raised)}"
    last = replay.result.id
    backend = replay.result.backend

    def revoked_and_the_rest_done(r: Replay) -> bool:
        # The worker stores REVOKED as soon as the broadcast arrives, often while the earlier
        # tasks still run: wait for those too.
        if backend.get_task_meta(last, cache=False)["status"] != "REVOKED":
            return False
        states = _states(r.snapshot())
        return all(state in READY for task_id, state in states.items() if task_id != last)

    replay.settle(until=revoked_and_the_rest_done)
    replay.quiet(QUIET / 2)
    states = _states(replay.snapshot())
    others = {i: state for i, state in states.items() if i != last}
    assert states.get(last) == "REVOKED", f"the last task was not revoked: {states}"
    assert others and all(state == "SUCCESS" for state in others.values()), states
    ran = [r.task for r in replay.runs]
    return f"the last task REVOKED; the {len(others)} earlier ones ran SUCCESS: {ran}"


def observe_options_first_task(replay: Replay) -> str:
    replay.completed()
    published = replay.published
    assert len(published) >= 2, published

    def options(p: Published):
        return {"priority": p.priority, "expires": p.expires, "timelimit": p.timelimit}

    first, later = published[0], published[1:]
    none = {"priority": None, "expires": None, "timelimit": (None, None)}
    given = {k: v for k, v in options(first).items() if v != none[k]}
    assert given, f"the first message carries no option: {options(first)}"
    carried = [p for p in later if any(options(p)[k] == v for k, v in given.items())]
    assert not carried, f"{carried[0].task} carried the options too: {options(carried[0])}"
    return (f"{first.task} was sent with {given}; {[p.task for p in later]} without them")


OBSERVERS = {
    "CCL001": observe_type_error,
    "CCL002": observe_type_error,
    "CCL003": observe_independent_chain,
    "CCL004": observe_large_result,
    "CCL005": observe_missing_retry,
    "CCL006": observe_wait_in_task,
    "CCL007": observe_called,
    "CCL008": observe_chord_without_results,
    "CCL009": observe_errback_gets_id,
    "CCL010": observe_group_callback,
    "CCL011": observe_single_member_group,
    "CCL012": observe_retry_swallowed,
    "CCL013": observe_options_as_arguments,
    "CCL014": observe_never_applied,
    "CCL015": observe_not_a_task,
    "CCL016": observe_returns_canvas,
    "CCL018": observe_unserializable,
    "CCL019": observe_type_error,
    "CCL020": observe_arguments_dropped,
    "CCL021": observe_revoke_last_only,
    "CCL022": observe_id_ran_twice,
    "CCL023": observe_id_ran_twice,
    "CCL024": observe_serial_map,
    "CCL025": observe_options_first_task,
    "CCL026": observe_id_ran_twice,
    "CCL027": observe_unbounded_chord_unlock,
}


@contextmanager
def _worker_refuses_to_wait(on: bool):
    """CCL006: the guard a worker in its own process sets (``worker/components.py``)."""
    from celery.result import _set_task_join_will_block, task_join_will_block

    before = task_join_will_block()
    if on:
        _set_task_join_will_block(True)
    try:
        yield
    finally:
        _set_task_join_will_block(before)


@pytest.mark.runtime
# Positives make the worker warn "Exception raised outside body": that is the point.
@pytest.mark.filterwarnings("ignore:Exception raised outside body:RuntimeWarning")
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: f"{w.module}.{w.function}")
def test_workflow_behaves_as_annotated(workflow: Workflow, fixture_apps):
    if workflow.module.split(".")[0] in ON_REDIS and not _port_open(6379):
        pytest.skip("Redis is not answering on 127.0.0.1:6379 (scripts/ensure-services)")
    # Messages of earlier workflows may still be in flight: the recorder keeps only what
    # belongs to the workflows this one starts (by root id).
    RECORDER.reset()
    with _worker_refuses_to_wait("CCL006" in workflow.codes):
        replay = _run(workflow)
        if not workflow.positive:
            try:
                replay.completed()
            except AssertionError as exc:
                sent = [(p.task, p.routing_key) for p in replay.published]
                ran = [r.task for r in replay.runs]
                raise AssertionError(f"{workflow} (negative): {exc}; sent: {sent}; ran: {ran}"
                                     ) from None
            return
        for code in workflow.codes:
            try:
                evidence = OBSERVERS[code](replay)
            except AssertionError as exc:
                raise AssertionError(f"{workflow} (expects {code}): {exc}") from None
            print(f"{workflow} {code}: {evidence}")
