"""Shadow tasks: stand-ins for the user's tasks, built from the ``replay`` data alone.

A shadow task has the registered name, the parameter list (defaults replaced by a placeholder),
``bind`` and the literal options of the real task, so Celery binds, checks, merges and routes its
arguments exactly as it would the real one. Its body is ours: it returns a placeholder result,
unless the current *behaviour* says otherwise (sleep, raise a transient error once, retry, wait
on a result inside the task, hang, return a given value, call ``retry()`` inside a broad
handler that swallows it). Behaviours are read from a small JSON
control file that the harness rewrites before each replay, so one worker process serves every
finding; every execution is appended to a journal (JSON lines) for timings and evidence.

The task functions are generated as source text (``def add(x, y): return _ccl_behave(...)``)
and exec'd: this is the harness's own code, never the user's.
"""
from __future__ import annotations

import builtins
import json
import keyword
import os
import threading
import time
from functools import partial
from typing import Any, Dict, List, Optional, Sequence

from celery_chain_lint.load import write_atomically
from celery_chain_lint.workflow.replay import ReplayParam, ReplayTask

PLACEHOLDER_DEFAULT = "<default>"
SHADOW_MODULE = "ccl_shadow"

# Task options copied from the decorator when literal; everything about routing is dropped
# (the harness owns its queue), and ``name``/``bind``/``base`` are handled separately.
COPIED_OPTIONS = (
    "typing", "ignore_result", "max_retries", "default_retry_delay", "retry_backoff",
    "retry_backoff_max", "retry_jitter", "acks_late", "track_started",
    "store_errors_even_if_ignored", "serializer", "reject_on_worker_lost",
)
SERIALIZERS = ("json",)  # never pickle: the worker would accept code from the broker


class InjectedFailure(Exception):
    """The failure the harness injects into a shadow task (an errback's parent, a fault...)."""


class WaitGuardMissing(Exception):
    """A shadow task waited on a result and Celery's guard did not stop it."""


def _exception_type(name: str) -> type:
    if name in ("InjectedFailure", "WaitGuardMissing"):
        return globals()[name]
    candidate = getattr(builtins, name, None)
    if isinstance(candidate, type) and issubclass(candidate, Exception):
        return candidate
    return InjectedFailure


class Control:
    """The behaviours in force, re-read whenever the control file changes."""

    def __init__(self, path: Optional[str]):
        self.path = path
        self._stamp = None
        self._data: Dict[str, Any] = {}
        self._lock = threading.Lock()

    def data(self) -> Dict[str, Any]:
        if not self.path:
            return {}
        with self._lock:
            try:
                stat = os.stat(self.path)
            except OSError:
                return {}
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp != self._stamp:
                try:
                    with open(self.path, encoding="utf-8") as handle:
                        self._data = json.load(handle)
                    self._stamp = stamp
                except (OSError, ValueError):
                    return self._data
            return self._data

    def behaviour(self, name: str) -> Dict[str, Any]:
        return self.data().get("behaviours", {}).get(name) or {}

    def write(self, data: Dict[str, Any]) -> None:
        write_atomically(self.path, json.dumps(data).encode("utf-8"))


class Journal:
    """Every shadow execution as one JSON line: task, id, retries, start, end, outcome."""

    def __init__(self, path: Optional[str]):
        self.path = path

    def record(self, entry: Dict[str, Any]) -> None:
        if not self.path:
            return
        line = (json.dumps(entry, default=repr) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read(self) -> List[Dict[str, Any]]:
        """Every entry so far; reads only what was appended since the last call."""
        if not self.path or not os.path.exists(self.path):
            return []
        if not hasattr(self, "_entries"):
            self._entries: List[Dict[str, Any]] = []
            self._offset = 0
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1  # a line being written is read next time
        self._offset += complete
        for line in data[:complete].splitlines():
            try:
                self._entries.append(json.loads(line))
            except ValueError:
                continue
        return list(self._entries)


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def behave(app, name: str, values: Dict[str, Any]):
    """The body of every shadow task."""
    task = app.tasks[name]
    request = task.request
    control: Control = app.ccl_control
    behaviour = control.behaviour(name)
    run = control.data().get("run")
    arguments = {k: _short(v) for k, v in values.items() if k != "self"}
    entry = {"run": run, "task": name, "id": request.id, "retries": request.retries or 0,
             "pid": os.getpid(), "start": time.time(), "args": arguments}
    # The options the message arrived with (CCL025: which tasks an option reached).
    delivery = request.delivery_info or {}
    received = {"routing_key": delivery.get("routing_key"), "priority": delivery.get("priority"),
                "expires": str(request.expires) if request.expires else None,
                "time_limit": list(request.timelimit) if request.timelimit
                and any(request.timelimit) else None}
    entry["options"] = {k: v for k, v in received.items() if v is not None}
    outcome = "success"
    try:
        if behaviour.get("exit") is not None and not request.is_eager:
            os._exit(int(behaviour["exit"]))  # a worker that dies (tests of the harness)
        if behaviour.get("sleep"):
            time.sleep(float(behaviour["sleep"]))
        if behaviour.get("hang"):
            time.sleep(float(behaviour["hang"]))
        fault = behaviour.get("raise")
        if fault:
            times = fault.get("times")
            if times is None or (request.retries or 0) < int(times):
                exc = _exception_type(fault.get("type", "InjectedFailure"))(
                    fault.get("message", "injected by celery-chain-lint verify"))
                retry = behaviour.get("retry")
                if retry:
                    outcome = "retry"
                    raise task.retry(exc=exc, countdown=float(retry.get("countdown", 0.1)),
                                     max_retries=retry.get("max_retries", 3))
                outcome = f"raised {type(exc).__name__}"
                raise exc
        swallow = behaviour.get("swallow_retry")
        if swallow is not None:
            _swallow_retry(task, swallow, entry)
            outcome = entry.pop("swallow_outcome")
        swallow = behaviour.get("swallow_replace")
        if swallow is not None:
            _swallow_replace(app, task, swallow, entry)
            outcome = entry.pop("swallow_outcome", outcome)
        if behaviour.get("wait"):
            outcome = "waited"
            wait_on_result(app, request.id, behaviour.get("wait_method") or "get",
                           float(behaviour["wait"]))
        if "return" in behaviour:
            return behaviour["return"]
        if "return_set" in behaviour:  # JSON cannot say "a set": the values, as a list
            return set(behaviour["return_set"])
        return f"<result of {name.rsplit('.', 1)[-1]}>"
    except BaseException as exc:
        if outcome == "success":
            outcome = f"raised {type(exc).__name__}"
        entry["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        entry["end"] = time.time()
        entry["outcome"] = outcome
        app.ccl_journal.record(entry)


def _caught_class(qualname: Optional[str]) -> type:
    from celery import exceptions

    if qualname in (None, "builtins.BaseException"):
        return BaseException
    if qualname in ("celery.exceptions.Retry", "celery.Retry"):
        return exceptions.Retry
    if qualname == "celery.exceptions.TaskPredicate":
        return exceptions.TaskPredicate
    if qualname == "celery.exceptions.CeleryError":
        return exceptions.CeleryError
    if qualname == "celery.exceptions.Ignore":
        return exceptions.Ignore
    return Exception


def _swallow_retry(task, swallow: Dict[str, Any], entry: Dict[str, Any]) -> None:
    """CCL012: ``try: raise self.retry(...) except <caught>: <swallow>``, as the flagged code
    does (``reraise``: the handler re-raises, the contrast)."""
    caught_class = _caught_class(swallow.get("catches"))
    try:
        raise task.retry(countdown=0, max_retries=int(swallow.get("max_retries", 1)))
    except caught_class as caught:  # the flagged handler
        entry["caught"] = f"{type(caught).__name__}: {caught}"
        if swallow.get("reraise"):
            raise
        entry["swallow_outcome"] = f"swallowed {type(caught).__name__}"


def _swallow_replace(app, task, swallow: Dict[str, Any], entry: Dict[str, Any]) -> None:
    """CCL023: ``try: self.replace(<the harness's member task>) except <caught>: <swallow>``,
    as the flagged code does (``reraise``: the handler re-raises, the contrast)."""
    caught_class = _caught_class(swallow.get("catches"))
    replacement = app.tasks[swallow.get("with") or "ccl_verify.member"].si("<replacement>")
    try:
        task.replace(replacement)
    except caught_class as caught:  # the flagged handler
        entry["caught"] = f"{type(caught).__name__}: {caught}"
        if swallow.get("reraise"):
            raise
        entry["swallow_outcome"] = f"swallowed {type(caught).__name__}"


def wait_on_result(app, task_id: str, method: str, timeout: float) -> None:
    """Wait, inside a task, as the flagged code does: Celery's guard must refuse at once."""
    from celery.exceptions import TimeoutError as ResultTimeout
    from celery.result import AsyncResult, GroupResult

    # The result of a task that will never run: without the guard this waits until timeout.
    result = AsyncResult(f"ccl-never-{task_id}", app=app)
    try:
        if method in ("join", "join_native"):
            group = GroupResult(f"ccl-never-group-{task_id}", [result], app=app)
            getattr(group, method)(timeout=timeout)
        elif method == "collect":
            for _ in result.collect(timeout=timeout):
                pass
        elif method == "wait":
            result.wait(timeout=timeout)
        else:
            result.get(timeout=timeout)
    except ResultTimeout:
        raise WaitGuardMissing(f"result.{method}() inside the task was not refused: it waited "
                               "until its timeout") from None


# ---- generating the task functions ----


def python_name(display: Optional[str], fallback: str = "task") -> str:
    name = (display or "").strip()
    if name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_ccl"):
        return name
    return fallback


def parameter_source(params: Optional[Sequence[ReplayParam]], leading: List[str]) -> str:
    """``self, x, y=_ccl_default, /, *args, label, **kwargs`` from replay parameters."""
    if params is None:
        return ", ".join(leading + ["*args", "**kwargs"])
    out = list(leading)
    kinds = [p.kind for p in params]
    star_done = "var-positional" in kinds
    for index, param in enumerate(params):
        name, kind = param.name, param.kind
        if not (name.isidentifier() and not keyword.iskeyword(name)):
            raise ValueError(f"parameter name {name!r} is not an identifier")
        default = "=_ccl_default" if param.has_default else ""
        if kind == "var-positional":
            out.append("*" + name)
        elif kind == "var-keyword":
            out.append("**" + name)
        elif kind == "keyword-only":
            if not star_done:
                out.append("*")
                star_done = True
            out.append(name + default)
        else:
            out.append(name + default)
        if kind == "positional-only" and (index + 1 == len(params)
                                          or kinds[index + 1] != "positional-only"):
            out.append("/")
    return ", ".join(out)


def _positional_defaults_ok(params: Optional[Sequence[ReplayParam]]) -> bool:
    """Python refuses ``def f(a=1, b)``: the index never produces it, but stay safe."""
    seen_default = False
    for param in params or ():
        if param.kind in ("positional-only", "positional-or-keyword"):
            if param.has_default:
                seen_default = True
            elif seen_default:
                return False
    return True


def task_source(spec: ReplayTask) -> str:
    params = spec.params
    if not _positional_defaults_ok(params):
        params = None
    fname = python_name(spec.display)
    if spec.class_based:
        return (f"class {fname}(_ccl_base):\n"
                f"    name = {spec.name!r}\n"
                f"    def run({parameter_source(params, ['self'])}):\n"
                f"        return _ccl_behave({spec.name!r}, locals())\n")
    leading = ["self"] if spec.bind else []
    return (f"def {fname}({parameter_source(params, leading)}):\n"
            f"    return _ccl_behave({spec.name!r}, locals())\n")


def task_options(spec: ReplayTask) -> Dict[str, Any]:
    options = {}
    for key in COPIED_OPTIONS:
        if key in spec.options:
            value = spec.options[key]
            if key == "serializer" and value not in SERIALIZERS:
                continue
            options[key] = value
    return options


def register_shadow(app, spec: ReplayTask):
    """Generate, exec and register one shadow task; returns the task."""
    source = task_source(spec)
    namespace: Dict[str, Any] = {
        "__name__": SHADOW_MODULE,
        "_ccl_behave": partial(behave, app),
        "_ccl_default": PLACEHOLDER_DEFAULT,
        "_ccl_base": app.Task,
    }
    exec(compile(source, f"<shadow {spec.name}>", "exec"), namespace)  # noqa: S102 - ours
    fname = python_name(spec.display)
    options = task_options(spec)
    if spec.class_based:
        cls = namespace[fname]
        for key, value in options.items():
            setattr(cls, key, value)
        task = app.register_task(cls())
    else:
        task = app.task(name=spec.name, bind=spec.bind, shared=False,
                        **options)(namespace[fname])
    task.ccl_source = source
    return app.tasks[spec.name]


def build_app(config: Dict[str, Any]):
    """The isolated Celery app of a run, with every shadow task of its batch (``config`` is
    JSON: the worker process reads it from a file)."""
    from celery import Celery

    app = Celery(config.get("main", "ccl-verify"), set_as_current=False)
    app.conf.update(config["conf"])
    app.ccl_control = Control(config.get("control"))
    app.ccl_journal = Journal(config.get("journal"))
    for spec in config.get("tasks", {}).values():
        register_shadow(app, ReplayTask.from_json(spec))
    return app
