"""Replays every ``workflow_*`` fixture on a real (in-process) Celery worker.

This proves the fixtures right, independently of the analyser: a workflow whose line range holds
an ``# expect:`` comment (POSITIVE) must really fail with a ``TypeError`` on Celery, and every
other workflow (NEGATIVE) must really complete with no failure anywhere.

Conventions (see the fixture modules):

- ``fixtures/`` is put on ``sys.path``; ``fixtures/shop/tasks/billing.py`` is ``shop.tasks.billing``.
- Only modules that define a module-level ``workflow_*()`` function are imported.
- A workflow returns a canvas (applied here with ``.apply_async()``), or applies its canvas itself
  and returns the ``AsyncResult``/``GroupResult``, or raises synchronously (``typing=True`` checks
  arguments when a message is published).

Where the failure shows on Celery 5.7 (observed):

- bad first link, group member, chord header, ``delay``/``apply_async``: ``TypeError`` raised
  synchronously by the publishing call;
- bad later chain link, ``link=``/``.link()`` callback: the worker raises while publishing it, the
  PREVIOUS task is stored as FAILURE(TypeError) (and the rest of the chain is marked failed too);
- bad chord body: the body's result is FAILURE(``ChordError("Callback error: TypeError(...)")``);
- bad errback: first the task's own exception is stored, then it is overwritten with the
  ``TypeError`` raised while sending the errback;
- class-based tasks are not type-checked when published: the task itself fails with the TypeError.
"""
from __future__ import annotations

import ast
import importlib
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    from expectations import expected_findings
except ImportError:  # tests/ became a package
    from tests.expectations import expected_findings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TIMEOUT = 10.0
POLL = 0.02


@dataclass(frozen=True)
class Workflow:
    module: str
    function: str
    path: str  # relative to FIXTURES
    first_line: int
    last_line: int
    codes: tuple[str, ...]  # expected finding codes within the function

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


# The findings whose workflows fail with a TypeError. Other rules flag workflows that run (CCL003
# independent-chain: serial for nothing): those stay negatives here, they must complete.
# CCL019 (an option given to a canvas's ``.delay()``) is a TypeError when the receiving task
# refuses the keyword; its positives that run (``**kwargs``, immutable) are not ``workflow_*``.
TYPE_ERROR_CODES = frozenset({"CCL001", "CCL002", "CCL019"})


def discover_workflows() -> list[Workflow]:
    expected = expected_findings(FIXTURES)
    workflows = []
    for path in sorted(FIXTURES.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(FIXTURES).as_posix()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("workflow_"):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                last = node.end_lineno or node.lineno
                codes = tuple(
                    sorted(
                        code
                        for (file, line, code) in expected
                        if file == rel and first <= line <= last and code in TYPE_ERROR_CODES
                    )
                )
                workflows.append(
                    Workflow(_module_name(path), node.name, rel, first, last, codes)
                )
    return workflows


WORKFLOWS = discover_workflows()
WORKFLOW_MODULES = sorted({w.module for w in WORKFLOWS})


def test_fixture_conventions():
    """Cheap static checks of the fixture set itself (no Celery involved)."""
    assert WORKFLOWS, "no workflow_* functions found under fixtures/"
    assert any(w.positive for w in WORKFLOWS) and any(not w.positive for w in WORKFLOWS)
    for w in WORKFLOWS:
        top = w.module.split(".")[0]
        assert top not in {"lookalikes", "never_imported"}, f"{w}: must not be replayed"
        assert (FIXTURES / top / "__init__.py").exists(), f"{w}: {top} is not a package"
    for path in FIXTURES.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("workflow_"):
                a = node.args
                assert not (a.posonlyargs or a.args or a.vararg or a.kwonlyargs or a.kwarg), (
                    f"{path}:{node.lineno} {node.name} must take no parameters"
                )


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


@pytest.fixture(scope="module")
def fixture_apps():
    pytest.importorskip("celery")
    from celery.contrib.testing.worker import start_worker

    sys.path.insert(0, str(FIXTURES))
    try:
        for name in WORKFLOW_MODULES:
            importlib.import_module(name)
        apps = _fixture_apps()
        assert apps, "no Celery app found in the fixture modules"
        for app in apps:
            app.conf.update(
                broker_url="memory://",
                result_backend="cache+memory://",
                task_always_eager=False,
                # One queue per app: the memory transport is shared by the whole process.
                task_default_queue=f"fixtures.{app.main}",
                broker_connection_retry_on_startup=False,
                # The memory transport polls once a second by default.
                broker_transport_options={"polling_interval": 0.01},
            )
            assert type(app.backend).__name__ == "CacheBackend", app.backend
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
    finally:
        sys.path.remove(str(FIXTURES))


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


def _run(workflow: Workflow):
    """Call the workflow and apply what it returns: (result, None) or (None, sync exception)."""
    from celery.canvas import Signature
    from celery.result import AsyncResult, ResultSet

    function = getattr(importlib.import_module(workflow.module), workflow.function)
    try:
        value = function()
        if isinstance(value, Signature):
            value = value.apply_async()
    except Exception as exc:  # noqa: BLE001 - the failure is the observation
        return None, exc
    assert isinstance(value, (AsyncResult, ResultSet)), (
        f"{workflow}: returned {value!r}; expected a canvas or a result"
    )
    return value, None


def _observe_positive(result):
    """Poll until some node fails with a TypeError: (type_error, other_failures, states)."""
    deadline = time.monotonic() + TIMEOUT
    others = {}
    while True:
        snapshot = _snapshot(result)
        for task_id, (state, value) in snapshot.items():
            if state == "FAILURE":
                if _is_type_error(value):
                    return value, others, _states(snapshot)
                others[task_id] = _describe(value)
        if all(state == "SUCCESS" for state, _ in snapshot.values()):
            return None, others, _states(snapshot)  # completed: nothing failed
        if time.monotonic() > deadline:
            return None, others, _states(snapshot)
        time.sleep(POLL)


def _observe_negative(result):
    """Poll until everything succeeded or something failed: (failures, states, done)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        snapshot = _snapshot(result)
        failures = {
            task_id: _describe(value)
            for task_id, (state, value) in snapshot.items()
            if state == "FAILURE"
        }
        if failures:
            return failures, _states(snapshot), False
        if all(state == "SUCCESS" for state, _ in snapshot.values()):
            return {}, _states(snapshot), True
        if time.monotonic() > deadline:
            return {}, _states(snapshot), False
        time.sleep(POLL)


@pytest.mark.runtime
# Positives make the worker warn "Exception raised outside body": that is the point.
@pytest.mark.filterwarnings("ignore:Exception raised outside body:RuntimeWarning")
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: f"{w.module}.{w.function}")
def test_workflow_behaves_as_annotated(workflow: Workflow, fixture_apps):
    result, raised = _run(workflow)

    if workflow.positive:
        if raised is not None:
            print(f"{workflow}: raised synchronously: {_describe(raised)}")
            assert _is_type_error(raised), (
                f"{workflow} (expects {', '.join(workflow.codes)}) raised "
                f"{_describe(raised)}, not a TypeError"
            )
            return
        exc, others, states = _observe_positive(result)
        if exc is not None:
            print(f"{workflow}: a node failed: {_describe(exc)}")
        assert exc is not None, (
            f"{workflow} (expects {', '.join(workflow.codes)}) showed no TypeError within "
            f"{TIMEOUT}s; other failures: {others or 'none'}; states: {states}"
        )
        return

    assert raised is None, f"{workflow} (negative) raised {_describe(raised)}"
    failures, states, done = _observe_negative(result)
    assert not failures, f"{workflow} (negative) failed: {failures}; states: {states}"
    assert done, f"{workflow} (negative) did not complete within {TIMEOUT}s; states: {states}"
