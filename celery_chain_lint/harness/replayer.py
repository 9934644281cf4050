"""Rebuild a finding's workflow on the shadow app, apply it, and watch every node.

The replay data says what the source builds: signatures by registered name with literal
arguments (placeholders where the source is not literal), chains, groups, chords, links and
errbacks, and how the canvas is applied. It is rebuilt with Celery's own canvas API, so Celery
does its own rewriting (chain flattening, ``group | task`` upgraded to a chord, single-member
groups unrolled) exactly as it would on the user's canvas. Every signature gets a task id up
front, so every node can be polled, including the later links of a chain that stay PENDING
because the previous one failed.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from celery_chain_lint.workflow.replay import (
    STAND_IN,
    ReplayCalled,
    ReplayChain,
    ReplayChord,
    ReplayGroup,
    ReplayMap,
    ReplayNode,
    ReplaySignature,
    ReplayValue,
    ReplayWorkflow,
)

STAND_IN_MEMBER = "ccl_verify.member"
TIMING_OPTIONS = {"countdown", "eta", "expires"}
ROUTING_OPTIONS = {"queue", "exchange", "routing_key", "task_id", "link", "link_error",
                   "priority_steps", "producer", "connection", "router", "add_to_parent"}
TERMINAL = {"SUCCESS", "FAILURE", "REVOKED"}


class Unreplayable(Exception):
    """The workflow cannot be rebuilt from the replay data: the finding is skipped."""


@dataclass
class NodeRef:
    id: str
    task: str
    role: str
    flagged: bool = False
    immutable: bool = False
    ignores_result: bool = False  # its state is never stored: the journal says when it ran


@dataclass
class Built:
    canvas: Any  # a Celery Signature (or what the source put there)
    nodes: List[NodeRef]
    apply: Callable[[], Any]
    text: str  # the workflow as Celery sees it (repr of the rebuilt canvas)
    outside: List[NodeRef] = field(default_factory=list)  # tasks run outside the workflow
    repaired: List[str] = field(default_factory=list)  # tasks given complete arguments
    filled: List[str] = field(default_factory=list)  # dynamic groups given stand-in members
    shaped: List[str] = field(default_factory=list)  # comprehension groups: members per shape
    untimed: List[str] = field(default_factory=list)  # countdown/eta options not replayed


def _short(name: Optional[str]) -> str:
    return (name or "?").rsplit(".", 1)[-1]


class Builder:
    def __init__(self, app, repair: bool = False,
                 stand_ins: Optional[Dict[str, Any]] = None, fill_dynamic: bool = False):
        self.app = app
        # ``fill_dynamic``: a group built from a generator gets two stand-in members (when
        # what is shown does not depend on them, e.g. a chord refused by its backend).
        self.fill_dynamic = fill_dynamic
        self.filled: List[str] = []
        self.shaped: List[str] = []
        self.untimed: List[str] = []
        # A stand-in value in the replay data: one the harness supplies, by key (CCL018).
        self.stand_ins = stand_ins or {}
        # ``repair``: every signature but the flagged one gets complete arguments and ignores
        # what it receives, so that another bad link (another finding) does not fail first.
        self.repair = repair
        self.repaired: List[str] = []
        self.nodes: List[NodeRef] = []
        self.outside: List[NodeRef] = []

    # ---- nodes ----

    def task(self, name: Optional[str]):
        if name is None:
            raise Unreplayable("a task of the workflow has no literal registered name")
        if name not in self.app.tasks:
            raise Unreplayable(f"task {name!r} is not in the task index (not defined in the "
                               "analysed code), so no shadow can be built for it")
        return self.app.tasks[name]

    def signature(self, node: ReplaySignature, role: str):
        from celery import signature as make_signature

        name = node.task
        task = self.task(name)
        if node.args is None or node.kwargs is None:
            raise Unreplayable(f"the arguments of {_short(name)} are not known statically "
                               "(*args, **kwargs or a non-literal args=)")
        args = tuple(self.value(v) for v in node.args)
        kwargs = {k: self.value(v) for k, v in node.kwargs.items()}
        immutable = node.immutable
        if self.repair and not node.flagged:
            args, kwargs = self.complete_arguments(name)
            args, immutable = tuple(args), True
            self.repaired.append(_short(name))
        if node.via == "by-name":
            sig = make_signature(name, args=args, kwargs=kwargs, immutable=immutable, app=self.app)
        else:
            sig = task.signature(args, kwargs, immutable=immutable)
        options = {k: v for k, v in node.options.items() if k not in ROUTING_OPTIONS}
        options.pop("immutable", None)
        for timing in TIMING_OPTIONS & set(options):  # a replay does not wait for the clock
            self.untimed.append(f"{_short(name)}: {timing}={options.pop(timing)!r}")
        if options:
            sig.set(**options)
        task_id = str(uuid.uuid4())
        sig.set(task_id=task_id)
        ignores = options.get("ignore_result", getattr(task, "ignore_result", False))
        self.nodes.append(NodeRef(task_id, name, role, node.flagged, immutable, bool(ignores)))
        return sig

    def called(self, node: ReplayCalled, role: str):
        """``task.delay(...)``/``task(...)`` where a signature belongs: run it, as the source
        does, with complete arguments (the replay data does not carry the call's own)."""
        name = node.task
        task = self.task(name)
        args, kwargs = self.complete_arguments(name)
        how = node.how
        if how == "call":
            return task(*args, **kwargs)
        task_id = str(uuid.uuid4())
        sent = task.apply_async(args, kwargs, task_id=task_id)
        self.outside.append(NodeRef(task_id, name, f"{role} ({_short(name)}.{how}() ran "
                                    "outside the workflow)"))
        return sent

    def value(self, data: ReplayValue) -> Any:
        if data.kind == STAND_IN:
            return self.stand_ins[data.content]
        return data.shown()

    def complete_arguments(self, name: str) -> Tuple[list, dict]:
        """Placeholders for every required parameter of the registered shadow."""
        import inspect

        args, kwargs = [], {}
        try:
            parameters = inspect.signature(self.app.tasks[name].run).parameters.values()
        except (KeyError, TypeError, ValueError):
            return args, kwargs
        for param in parameters:
            if param.default is not inspect.Parameter.empty:
                continue
            if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                args.append(f"<{param.name}>")
            elif param.kind == param.KEYWORD_ONLY:
                kwargs[param.name] = f"<{param.name}>"
        return args, kwargs

    def build(self, node: Optional[ReplayNode], role: str = "canvas"):
        if node is None:
            raise Unreplayable("part of the workflow is not known statically")
        if isinstance(node, ReplaySignature):
            return self.signature(node, role)
        if isinstance(node, ReplayCalled):
            return self.called(node, role)
        if isinstance(node, ReplayChain):
            return self.chain(node, role)
        if isinstance(node, ReplayGroup):
            return self.group(node, role)
        if isinstance(node, ReplayMap):
            return self.mapped(node, role)
        if isinstance(node, ReplayChord):
            from celery import chord

            header = self.build(node.header, f"{role}.chord.header")
            body = self.build(node.body, f"{role}.chord.body")
            header_tasks = header.tasks if hasattr(header, "tasks") else [header]
            return chord(header_tasks, body)
        raise Unreplayable("a part of the workflow (unknown) cannot be rebuilt")

    def chain(self, node: ReplayChain, role: str):
        from celery import chain

        steps = [self.build(step, f"{role}.chain[{index}]")
                 for index, step in enumerate(node.steps)]
        # As the source writes it: ``chain(a, b)`` without keywords folds like ``a | b``
        # (Celery's own rewriting); the signatures carry the app.
        if node.compose == "pipe" and len(steps) >= 2:
            # Composed with ``|`` (CCL022): ``g1 | g2 | g3``, or ``g1 | g2 | chain(m, n)``
            # where the source's inner chain was flattened into the steps.
            import functools
            import operator

            split = node.pipe_split or len(steps)
            piped = functools.reduce(operator.or_, steps[:split])
            return piped | chain(*steps[split:]) if split < len(steps) else piped
        return chain(*steps) if steps else chain()

    def group(self, node: ReplayGroup, role: str):
        from celery import group

        members = node.members
        if members is None and self.fill_dynamic and STAND_IN_MEMBER in self.app.tasks:
            self.filled.append(role)
            members = tuple(ReplaySignature(STAND_IN_MEMBER, (ReplayValue.literal(i),),
                                            immutable=True, via="si") for i in (1, 2))
        if members is None and node.shapes:
            # Built by a comprehension: two members of each of its shapes.
            self.shaped.append(role)
            members = tuple(shape for shape in node.shapes for _ in range(2))
        if members is None:
            raise Unreplayable("the group's members are built dynamically (a generator, a "
                               "loop or a splat)")
        built_members = [self.build(member, f"{role}.group[{index}]")
                         for index, member in enumerate(members)]
        # Callbacks given to the group itself, as the source gives them (CCL010):
        # ``group(..., link=cb)`` or ``group(...).set(link=cb)``.
        links = [(link.how, self.build(link.callback, f"{role}.link[{index}]"))
                 for index, link in enumerate(node.links)]
        keyword = [sig for how, sig in links if how == "keyword"]
        built = group(built_members, link=keyword[0] if len(keyword) == 1 else keyword) \
            if keyword else group(built_members)
        for how, sig in links:
            if how == "set":
                built = built.set(link=sig)
        return built

    def mapped(self, node: ReplayMap, role: str):
        """``task.map(items)``, ``task.starmap(items)``, or ``task.chunks(items, n)`` as the
        group of ``celery.starmap`` tasks its ``apply_async`` sends (CCL024). Items not known
        statically are three stand-ins (complete arguments for ``starmap``/``chunks``)."""
        name = node.task
        task = self.task(name)
        how = node.how
        items = node.items
        if items is None:
            if how == "map":
                items = [f"<item {index}>" for index in (1, 2, 3)]
            else:
                items = [tuple(self.complete_arguments(name)[0])] * 3
        else:
            items = [self.value(item) for item in items]
            if how != "map" and any(not isinstance(item, (list, tuple)) for item in items):
                # ``task(*item)``: an item known only by its source text has no length here.
                raise Unreplayable(f"an item of {how}() is not a literal list or tuple: the "
                                   "arguments it unpacks into are not known statically")
        if how == "chunks":
            built = task.chunks(items, int(node.size or 1)).group()
            for index, member in enumerate(built.tasks):
                task_id = str(uuid.uuid4())
                member.set(task_id=task_id)
                self.nodes.append(NodeRef(task_id, "celery.starmap",
                                          f"{role}.chunk[{index}]"))
            return built
        built = task.map(items) if how == "map" else task.starmap(items)
        task_id = str(uuid.uuid4())
        built.set(task_id=task_id)
        self.nodes.append(NodeRef(task_id, f"celery.{how}", role))
        return built


class CompositionError(Exception):
    """Building the canvas failed as it would in the source (e.g. ``chain(add.delay(1, 2))``)."""

    def __init__(self, error: BaseException, outside: List[NodeRef]):
        super().__init__(str(error))
        self.error = error
        self.outside = outside


def build(app, workflow: ReplayWorkflow, repair: bool = False,
          stand_ins: Optional[Dict[str, Any]] = None, fill_dynamic: bool = False) -> Built:
    """Rebuild the workflow; composition errors (CCL007) raise CompositionError."""
    builder = Builder(app, repair, stand_ins, fill_dynamic)
    application = workflow.application
    how, args, kwargs = "apply_async", (), {}
    if application is not None:
        how = application.how or "apply_async"
        if application.args is None or application.kwargs is None:
            raise Unreplayable("the arguments the workflow is applied with are not known "
                               "statically")
        args = tuple(builder.value(v) for v in application.args)
        kwargs = {k: builder.value(v) for k, v in application.kwargs.items()}
    # Callbacks given to ``apply_async(link=..., link_error=...)`` are passed the same way
    # (a group refuses them there); the others were attached with ``.link()``/``.on_error()``.
    as_options = application is not None and how == "apply_async"
    links: Dict[str, List[Any]] = {"link": [], "link_error": []}
    try:
        canvas = builder.build(workflow.canvas, "canvas")
        for index, callback in enumerate(workflow.callbacks):
            kind = callback.kind
            role = f"link[{index}]" if kind == "link" else f"errback[{index}]"
            signature = builder.build(callback.callback, role)
            if as_options:
                links["link" if kind == "link" else "link_error"].append(signature)
                continue
            if not hasattr(canvas, "link"):
                raise Unreplayable("a callback is attached to something that is not a canvas")
            if kind == "link":
                canvas.link(signature)
            else:
                canvas.link_error(signature)
    except Unreplayable:
        raise
    except Exception as error:  # noqa: BLE001 - the source would fail the same way
        raise CompositionError(error, builder.outside) from error
    options = {key: value for key, value in links.items() if value}
    if as_options:
        # Execution options to apply the canvas with, when a confirmer asks (CCL025).
        options.update(application.options or {} if application is not None else {})

    def apply():
        if how == "none":  # built and thrown away, as the source does (CCL014)
            return None
        if how == "delay":
            return canvas.delay(*args, **kwargs)
        if how == "call":
            return canvas(*args, **kwargs)
        return canvas.apply_async(args or None, kwargs or None, **options)

    text = describe(canvas)
    if application is not None:
        rendered = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
                             + [f"{k}={describe(v[0] if len(v) == 1 else v)}"
                                if k in links else f"{k}={v!r}" for k, v in options.items()])
        if how == "none":
            text += "  (built, never applied)"
        else:
            text += f"  applied with .{how if how != 'call' else '__call__'}({rendered})"
    built = Built(canvas, builder.nodes, apply, text, builder.outside)
    built.repaired = builder.repaired
    built.filled = builder.filled
    built.shaped = builder.shaped
    built.untimed = builder.untimed
    return built


def describe(canvas: Any) -> str:
    try:
        text = repr(canvas)
    except Exception:  # noqa: BLE001 - display only
        text = object.__repr__(canvas)
    return text if len(text) <= 600 else text[:597] + "..."


# ---- observing ----


def _exception_text(result: Any) -> Optional[str]:
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    return None


@dataclass
class Observation:
    states: Dict[str, Dict[str, Any]]  # task id -> {state, result/exception, date_done}
    elapsed: float
    settled: bool
    timed_out: bool
    worker: Optional[str] = None  # the worker's end when it died during the run

    def state(self, task_id: str) -> str:
        return self.states.get(task_id, {}).get("state", "PENDING")


def snapshot(app, ids: List[str]) -> Dict[str, Dict[str, Any]]:
    states = {}
    for task_id in ids:
        try:
            meta = app.backend.get_task_meta(task_id, cache=False)
        except Exception as exc:  # noqa: BLE001 - a backend hiccup is an observation, not fatal
            states[task_id] = {"state": "UNKNOWN", "error": f"{type(exc).__name__}: {exc}"}
            continue
        state = meta.get("status", "PENDING")
        entry: Dict[str, Any] = {"state": state}
        result = meta.get("result")
        if state == "FAILURE" or isinstance(result, BaseException):
            entry["exception"] = _exception_text(result) or repr(result)
            entry["exception_type"] = type(result).__name__ if isinstance(result, BaseException) \
                else None
        elif state == "SUCCESS":
            entry["result"] = result
            try:
                entry["result_bytes"] = len(json.dumps(result).encode("utf-8"))
            except (TypeError, ValueError):
                pass
        elif state == "RETRY":
            entry["exception"] = _exception_text(result) or repr(result)
        done = meta.get("date_done")
        if done is not None:
            entry["date_done"] = done.isoformat() if hasattr(done, "isoformat") else str(done)
        states[task_id] = entry
    return states


def observe(app, ids: List[str], timeout: float, settle: float = 0.4, poll: float = 0.02,
            stop_when: Optional[Callable[[Dict[str, Dict[str, Any]]], bool]] = None,
            worker_alive: Optional[Callable[[], Optional[str]]] = None,
            start: Optional[float] = None, until: str = "settled",
            journal: Optional[Callable[[], Dict[str, Dict[str, Any]]]] = None,
            unstored: Optional[set] = None) -> Observation:
    """Poll every node until all succeeded, a failure settled, ``stop_when`` holds, or timeout.

    ``until="settled"``: a failure ends the run once the states stop changing for ``settle``
    seconds (an errback may still overwrite the failed task's state just after it failed).
    ``until="timeout"``: watch for the whole ``timeout`` (a chord that must never fire).
    """
    start = time.monotonic() if start is None else start
    deadline = start + timeout
    last, changed = None, time.monotonic()
    unanswered_since = None
    while True:
        states = snapshot(app, ids)
        if any(s.get("state") == "UNKNOWN" for s in states.values()):
            # The backend does not answer: give up on this run after a second (the verifier
            # then waits for the services, bounded, and replays the finding once).
            unanswered_since = unanswered_since or time.monotonic()
            if time.monotonic() - unanswered_since > 1.0:
                return Observation(states, time.monotonic() - start, False, False)
        else:
            unanswered_since = None
        if unstored and journal is not None:
            # Tasks that ignore results never get a stored state: their journal entry says.
            ran = journal()
            for task_id in unstored:
                entry = ran.get(task_id)
                if states.get(task_id, {}).get("state") == "PENDING" and entry and "end" in entry:
                    if entry.get("error"):
                        states[task_id] = {"state": "FAILURE", "exception": entry["error"],
                                           "exception_type": entry["error"].split(":")[0],
                                           "unstored": True}
                    else:
                        states[task_id] = {"state": "SUCCESS", "result": "(not stored: the "
                                           "task ignores results)", "unstored": True}
        now = time.monotonic()
        if worker_alive is not None:
            dead = worker_alive()
            if dead:
                return Observation(states, now - start, False, False, worker=dead)
        if states != last:
            last, changed = states, now
        if stop_when is not None and stop_when(states):
            return Observation(states, now - start, True, False)
        if until == "settled":
            if ids and all(s["state"] == "SUCCESS" for s in states.values()):
                return Observation(states, now - start, True, False)
            failed = any(s["state"] == "FAILURE" for s in states.values())
            if failed and now - changed >= settle:
                return Observation(states, now - start, True, False)
        if now >= deadline:
            return Observation(states, now - start, until == "timeout", until != "timeout")
        time.sleep(poll)
