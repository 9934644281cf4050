"""Replay data: what the runtime harness needs to rebuild a finding on shadow tasks, typed.

The workflow model builds it (``workflow_replay``, ``invocation_replay``) and a rule adds what
its confirmer needs (``dataclasses.replace(replay, receivers=...)``). ``Finding.to_json()``
writes it as plain JSON with ``Replay.to_json()``; the harness reads it back once with
``Replay.from_json()`` and works on these objects only. The JSON is part of the output
(``--format json``, SARIF, the cache), so ``to_json`` keeps every key, and its order, as it was
when the data was built as dicts: a key absent there is absent here (``None`` fields are not
written unless the key always was).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.workflow.model import (
    CalledNode,
    ChainNode,
    ChordNode,
    GroupNode,
    Invocation,
    Node,
    SignatureNode,
    Value,
    Workflow,
    signatures,
)

Json = Dict[str, Any]

# ---- values ----

LITERAL, PLACEHOLDER, STAND_IN = "literal", "placeholder", "stand_in"


@dataclass(frozen=True)
class ReplayValue:
    """An argument: a ``literal`` replayed as itself, a ``placeholder`` naming source text the
    analyser cannot evaluate (replayed as ``"<text>"``), or a ``stand_in`` key: a value the
    harness supplies at run time (an unserializable object, CCL018)."""

    kind: str
    content: Any

    @classmethod
    def literal(cls, value: Any) -> "ReplayValue":
        return cls(LITERAL, value)

    @classmethod
    def placeholder(cls, text: str) -> "ReplayValue":
        return cls(PLACEHOLDER, text)

    @classmethod
    def stand_in(cls, key: str) -> "ReplayValue":
        return cls(STAND_IN, key)

    @property
    def is_literal(self) -> bool:
        return self.kind == LITERAL

    @property
    def is_placeholder(self) -> bool:
        return self.kind == PLACEHOLDER

    def shown(self) -> Any:
        """What a replay passes for it when the harness supplies nothing: the literal, or
        ``"<source text>"``."""
        return self.content if self.kind == LITERAL else f"<{self.content}>"

    def to_json(self) -> Json:
        return {self.kind: self.content}

    @classmethod
    def from_json(cls, data: Json) -> "ReplayValue":
        for kind in (LITERAL, PLACEHOLDER, STAND_IN):
            if kind in data:
                return cls(kind, data[kind])
        raise ValueError(f"not a replay value: {data!r}")


def _values_json(values: Optional[Tuple[ReplayValue, ...]]) -> Optional[List[Json]]:
    return None if values is None else [v.to_json() for v in values]


def _keywords_json(values: Optional[Mapping[str, ReplayValue]]) -> Optional[Json]:
    return None if values is None else {k: v.to_json() for k, v in values.items()}


def _values(data: Optional[List[Json]]) -> Optional[Tuple[ReplayValue, ...]]:
    return None if data is None else tuple(ReplayValue.from_json(v) for v in data)


def _keywords(data: Optional[Json]) -> Optional[Dict[str, ReplayValue]]:
    return None if data is None else {k: ReplayValue.from_json(v) for k, v in data.items()}


# ---- canvas nodes ----


@dataclass(frozen=True)
class ReplaySignature:
    """``task.s(...)``/``.si(...)``/``signature("name", ...)``. ``args``/``kwargs`` are None
    when not known statically (a splat); ``flagged`` marks the signature the finding is about."""

    task: Optional[str]
    args: Optional[Tuple[ReplayValue, ...]] = ()
    kwargs: Optional[Mapping[str, ReplayValue]] = field(default_factory=dict)
    immutable: bool = False
    via: str = "s"
    flagged: bool = False
    line: Optional[int] = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> Json:
        return {"type": "signature", "task": self.task, "args": _values_json(self.args),
                "kwargs": _keywords_json(self.kwargs), "immutable": self.immutable,
                "via": self.via, "flagged": self.flagged, "line": self.line,
                "options": dict(self.options)}

    @classmethod
    def from_json(cls, data: Json) -> "ReplaySignature":
        return cls(data.get("task"), _values(data.get("args")), _keywords(data.get("kwargs")),
                   bool(data.get("immutable")), data.get("via", "s"), bool(data.get("flagged")),
                   data.get("line"), dict(data.get("options") or {}))


@dataclass(frozen=True)
class ReplayChain:
    """A chain's steps, flattened as Celery flattens them. ``compose="pipe"`` (CCL022): rebuild
    it with ``|``, the first ``pipe_split`` steps piped and the rest chained after them."""

    steps: Tuple["ReplayNode", ...]
    compose: Optional[str] = None
    pipe_split: Optional[int] = None

    def to_json(self) -> Json:
        data: Json = {"type": "chain", "steps": [s.to_json() for s in self.steps]}
        if self.compose is not None:
            data["compose"] = self.compose
            if self.pipe_split is not None:
                data["pipe_split"] = self.pipe_split
        return data

    @classmethod
    def from_json(cls, data: Json) -> "ReplayChain":
        return cls(tuple(node_from_json(s) for s in data.get("steps") or ()),
                   data.get("compose"), data.get("pipe_split"))


@dataclass(frozen=True)
class ReplayGroupLink:
    """A callback given to a group itself (CCL010): ``how`` is "keyword"
    (``group(..., link=cb)``) or "set" (``g.set(link=cb)``)."""

    how: str
    callback: "ReplayNode"

    def to_json(self) -> Json:
        return {"how": self.how, "callback": self.callback.to_json()}

    @classmethod
    def from_json(cls, data: Json) -> "ReplayGroupLink":
        return cls(data.get("how"), node_from_json(data.get("callback")))


@dataclass(frozen=True)
class ReplayGroup:
    """``members`` is None when built dynamically; then ``shapes``, when a comprehension builds
    it, holds one member of each shape (the harness replays two of each)."""

    members: Optional[Tuple["ReplayNode", ...]]
    unrolled: bool = False
    shapes: Optional[Tuple["ReplayNode", ...]] = None
    links: Tuple[ReplayGroupLink, ...] = ()

    def to_json(self) -> Json:
        data: Json = {"type": "group",
                      "members": None if self.members is None
                      else [m.to_json() for m in self.members],
                      "unrolled": self.unrolled}
        if self.shapes is not None:
            data["shapes"] = [m.to_json() for m in self.shapes]
        if self.links:
            data["links"] = [link.to_json() for link in self.links]
        return data

    @classmethod
    def from_json(cls, data: Json) -> "ReplayGroup":
        members, shapes = data.get("members"), data.get("shapes")
        return cls(None if members is None else tuple(node_from_json(m) for m in members),
                   bool(data.get("unrolled")),
                   None if shapes is None else tuple(node_from_json(m) for m in shapes),
                   tuple(ReplayGroupLink.from_json(link) for link in data.get("links") or ()))


@dataclass(frozen=True)
class ReplayChord:
    header: "ReplayNode"
    body: "ReplayNode"

    def to_json(self) -> Json:
        return {"type": "chord", "header": self.header.to_json(), "body": self.body.to_json()}

    @classmethod
    def from_json(cls, data: Json) -> "ReplayChord":
        return cls(node_from_json(data.get("header")), node_from_json(data.get("body")))


@dataclass(frozen=True)
class ReplayCalled:
    """``task.delay(...)``/``task(...)`` where a signature belongs (CCL007): the replay runs it,
    as the source does, with complete arguments."""

    task: Optional[str]
    how: str = "delay"
    flagged = False  # never the flagged node: a walk may ask any node

    def to_json(self) -> Json:
        return {"type": "called", "task": self.task, "how": self.how}

    @classmethod
    def from_json(cls, data: Json) -> "ReplayCalled":
        return cls(data.get("task"), data.get("how") or "delay")


@dataclass(frozen=True)
class ReplayMap:
    """``task.map(items)``, ``task.starmap(items)``, ``task.chunks(items, size)`` (CCL024's
    confirmer builds it); ``items`` None: not known statically (three stand-ins)."""

    task: Optional[str]
    how: str = "map"
    items: Optional[Tuple[ReplayValue, ...]] = None
    size: Optional[int] = None
    flagged: bool = False  # CCL002: its items do not bind to the task's parameters

    def to_json(self) -> Json:
        data = {"type": "map", "task": self.task, "how": self.how,
                "items": _values_json(self.items), "size": self.size}
        if self.flagged:
            data["flagged"] = True
        return data

    @classmethod
    def from_json(cls, data: Json) -> "ReplayMap":
        return cls(data.get("task"), data.get("how") or "map", _values(data.get("items")),
                   data.get("size"), bool(data.get("flagged")))


@dataclass(frozen=True)
class ReplayUnknown:
    """A part of the canvas the analyser cannot see: it cannot be rebuilt."""

    flagged = False

    def to_json(self) -> Json:
        return {"type": "unknown"}

    @classmethod
    def from_json(cls, data: Json) -> "ReplayUnknown":
        return cls()


ReplayNode = Union[ReplaySignature, ReplayChain, ReplayGroup, ReplayChord, ReplayCalled,
                   ReplayMap, ReplayUnknown]
_NODE_TYPES = {"signature": ReplaySignature, "chain": ReplayChain, "group": ReplayGroup,
               "chord": ReplayChord, "called": ReplayCalled, "map": ReplayMap,
               "unknown": ReplayUnknown}


def node_from_json(data: Optional[Json]) -> ReplayNode:
    kind = _NODE_TYPES.get((data or {}).get("type"), ReplayUnknown)
    return kind.from_json(data or {})


def walk(node: Optional[ReplayNode]) -> Iterator[ReplayNode]:
    """The node and every node inside it, in the order Celery runs them: chain steps in
    order, group members, a chord's header then its body (not a group's own links)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        yield current
        if isinstance(current, ReplayChain):
            stack.extend(reversed(current.steps))
        elif isinstance(current, ReplayGroup):
            stack.extend(reversed(current.members or ()))
        elif isinstance(current, ReplayChord):
            stack.extend([current.body, current.header])


def rewrite(node: ReplayNode, change: Callable[[ReplayNode], ReplayNode]) -> ReplayNode:
    """The tree with ``change`` applied to every node, innermost first (the nodes are frozen:
    this is how a confirmer flags a signature or adds a member). A node none of whose children
    changed is the same object, so a confirmer can find its target with ``is``."""
    def same(old, new) -> bool:
        return len(old) == len(new) and all(a is b for a, b in zip(old, new))

    if isinstance(node, ReplayChain):
        steps = tuple(rewrite(step, change) for step in node.steps)
        node = node if same(node.steps, steps) else replace(node, steps=steps)
    elif isinstance(node, ReplayGroup) and node.members is not None:
        members = tuple(rewrite(member, change) for member in node.members)
        node = node if same(node.members, members) else replace(node, members=members)
    elif isinstance(node, ReplayChord):
        header, body = rewrite(node.header, change), rewrite(node.body, change)
        if header is not node.header or body is not node.body:
            node = replace(node, header=header, body=body)
    return change(node)


# ---- the workflow as applied ----


@dataclass(frozen=True)
class ReplayApplication:
    """How the canvas is applied: ``how`` is "apply_async", "delay", "call" or "none" (built,
    never applied); ``options``: execution options to apply it with (CCL025)."""

    how: str
    args: Optional[Tuple[ReplayValue, ...]] = ()
    kwargs: Optional[Mapping[str, ReplayValue]] = field(default_factory=dict)
    options: Optional[Mapping[str, Any]] = None

    def to_json(self) -> Json:
        data = {"how": self.how, "args": _values_json(self.args),
                "kwargs": _keywords_json(self.kwargs)}
        if self.options is not None:
            data["options"] = dict(self.options)
        return data

    @classmethod
    def from_json(cls, data: Json) -> "ReplayApplication":
        options = data.get("options")
        return cls(data.get("how"), _values(data.get("args")), _keywords(data.get("kwargs")),
                   None if options is None else dict(options))


@dataclass(frozen=True)
class ReplayCallback:
    """``canvas.link(cb)`` (kind "link") or ``canvas.on_error(cb)``/``link_error`` ("error")."""

    kind: str
    callback: ReplayNode

    def to_json(self) -> Json:
        return {"kind": self.kind, "callback": self.callback.to_json()}

    @classmethod
    def from_json(cls, data: Json) -> "ReplayCallback":
        return cls(data.get("kind"), node_from_json(data.get("callback")))


@dataclass(frozen=True)
class ReplayWorkflow:
    """What one replay rebuilds and applies: the canvas, how it is applied (None: as
    ``apply_async()``), and the callbacks attached to it."""

    canvas: ReplayNode
    application: Optional[ReplayApplication] = None
    callbacks: Tuple[ReplayCallback, ...] = ()

    def roots(self) -> List[ReplayNode]:
        return [self.canvas] + [c.callback for c in self.callbacks]

    def nodes(self) -> Iterator[ReplayNode]:
        for root in self.roots():
            yield from walk(root)

    def signatures(self) -> Iterator[ReplaySignature]:
        return (n for n in self.nodes() if isinstance(n, ReplaySignature))

    def to_json(self) -> Json:
        return {"canvas": self.canvas.to_json(),
                "application": None if self.application is None else self.application.to_json(),
                "callbacks": [c.to_json() for c in self.callbacks]}

    @classmethod
    def from_json(cls, data: Json) -> "ReplayWorkflow":
        application = data.get("application")
        return cls(node_from_json(data.get("canvas")),
                   None if application is None else ReplayApplication.from_json(application),
                   tuple(ReplayCallback.from_json(c) for c in data.get("callbacks") or ()))


# ---- tasks ----


@dataclass(frozen=True)
class ReplayParam:
    name: str
    kind: str = "positional-or-keyword"
    has_default: bool = False

    def to_json(self) -> Json:
        return {"name": self.name, "kind": self.kind, "has_default": self.has_default}

    @classmethod
    def from_json(cls, data: Json) -> "ReplayParam":
        return cls(data.get("name"), data.get("kind", "positional-or-keyword"),
                   bool(data.get("has_default")))


def _params_json(params: Optional[Tuple[ReplayParam, ...]]) -> Optional[List[Json]]:
    return None if params is None else [p.to_json() for p in params]


def _params(data: Optional[List[Json]]) -> Optional[Tuple[ReplayParam, ...]]:
    return None if data is None else tuple(ReplayParam.from_json(p) for p in data)


@dataclass(frozen=True)
class ReplayTask:
    """What a shadow of the task needs: registered name, parameters (None: unknown), ``bind``,
    literal options. ``lenient``: known by name only, its shadow takes anything."""

    name: Optional[str]
    display: Optional[str] = None
    module: Optional[str] = None
    path: Optional[str] = None
    line: Optional[int] = None
    params: Optional[Tuple[ReplayParam, ...]] = None
    bind: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    class_based: bool = False
    lenient: bool = False

    @property
    def accepts_any_keyword(self) -> bool:
        return any(p.kind == "var-keyword" for p in self.params or ())

    def to_json(self) -> Json:
        data = {"name": self.name, "display": self.display, "module": self.module,
                "path": self.path, "line": self.line, "params": _params_json(self.params),
                "bind": self.bind, "options": dict(self.options),
                "class_based": self.class_based}
        if self.lenient:
            data["lenient"] = True
        return data

    @classmethod
    def from_json(cls, data: Json) -> "ReplayTask":
        return cls(data.get("name"), data.get("display"), data.get("module"), data.get("path"),
                   data.get("line"), _params(data.get("params")), bool(data.get("bind")),
                   dict(data.get("options") or {}), bool(data.get("class_based")),
                   bool(data.get("lenient")))


def _task(data: Optional[Json]) -> Optional[ReplayTask]:
    return None if data is None else ReplayTask.from_json(data)


# ---- what a rule adds for its confirmer ----
# Each is a few keys of the replay JSON, written flat at the top level, in this order.


@dataclass(frozen=True)
class NotATaskFunction:
    """CCL015: the plain function the call looks a task attribute up on, as defined."""

    name: str
    module: Optional[str]
    is_async: bool
    params: Tuple[ReplayParam, ...]

    def to_json(self) -> Json:
        return {"name": self.name, "module": self.module, "is_async": self.is_async,
                "params": _params_json(self.params)}

    @classmethod
    def from_json(cls, data: Json) -> "NotATaskFunction":
        return cls(data.get("name"), data.get("module"), bool(data.get("is_async")),
                   _params(data.get("params")) or ())


@dataclass(frozen=True)
class MissingAttribute:
    """CCL015: ``module.name.delay()`` where the module has no ``name``."""

    module: str
    name: str

    def to_json(self) -> Json:
        return {"module": self.module, "name": self.name}

    @classmethod
    def from_json(cls, data: Json) -> "MissingAttribute":
        return cls(data.get("module"), data.get("name"))


@dataclass(frozen=True)
class SwallowingHandler:
    """CCL012/CCL023: the handler around ``self.retry()``/``self.replace()`` that swallows its
    exception; ``itself``: the task retries (replaces) itself, the only case replayed."""

    handler: Any
    catches: Any
    itself: bool
    call: str  # "retry" or "replace"

    def to_json(self) -> Json:
        key = "retries_itself" if self.call == "retry" else "replaces_itself"
        return {"handler": self.handler, "catches": self.catches, key: self.itself}

    @classmethod
    def from_json(cls, data: Json) -> "SwallowingHandler":
        call = "retry" if "retries_itself" in data else "replace"
        itself = data.get("retries_itself" if call == "retry" else "replaces_itself", True)
        return cls(data.get("handler"), data.get("catches"), bool(itself), call)


@dataclass(frozen=True)
class NetworkCall:
    """CCL005: the network call without a retry policy; ``problem`` is "forever" when the
    policy retries with no bound."""

    call: Any
    line: Optional[int]
    problem: Any

    def to_json(self) -> Json:
        return {"network_call": self.call, "network_line": self.line, "problem": self.problem}

    @classmethod
    def from_json(cls, data: Json) -> "NetworkCall":
        return cls(data.get("network_call"), data.get("network_line"), data.get("problem"))


@dataclass(frozen=True)
class WaitCall:
    """CCL006: ``.get()``/``.wait()``/``.join()``... on a result inside the task."""

    method: str
    source: Any
    awaited_task: Optional[ReplayTask]
    line: Optional[int]

    def to_json(self) -> Json:
        return {"wait_method": self.method, "source": self.source,
                "awaited_task": None if self.awaited_task is None
                else self.awaited_task.to_json(), "line": self.line}

    @classmethod
    def from_json(cls, data: Json) -> "WaitCall":
        return cls(data.get("wait_method"), data.get("source"), _task(data.get("awaited_task")),
                   data.get("line"))


@dataclass(frozen=True)
class ReturnedSet:
    """CCL018: the task returns a set; ``result_passed``: a workflow sends it on."""

    line: Optional[int]
    result_passed: bool

    def to_json(self) -> Json:
        return {"returns": "set", "return_line": self.line, "result_passed": self.result_passed}

    @classmethod
    def from_json(cls, data: Json) -> "ReturnedSet":
        return cls(data.get("return_line"), bool(data.get("result_passed")))


@dataclass(frozen=True)
class LargeReturn:
    """CCL004: what large value the task returns (``payload``), and where."""

    payload: Any
    line: Optional[int]

    def to_json(self) -> Json:
        return {"payload": self.payload, "return_line": self.line}

    @classmethod
    def from_json(cls, data: Json) -> "LargeReturn":
        return cls(data.get("payload"), data.get("return_line"))


@dataclass(frozen=True)
class LongDelay:
    """CCL026: a countdown/eta (``how``: "apply_async", or "retry" for a retry delay) longer
    than the Redis broker's visibility timeout."""

    how: Any
    kind: Any
    seconds: Any
    visibility_timeout: Any
    broker: Any

    def to_json(self) -> Json:
        return {"how": self.how, "kind": self.kind, "seconds": self.seconds,
                "visibility_timeout": self.visibility_timeout, "broker": self.broker}

    @classmethod
    def from_json(cls, data: Json) -> "LongDelay":
        return cls(data.get("how"), data.get("kind"), data.get("seconds"),
                   data.get("visibility_timeout"), data.get("broker"))


@dataclass(frozen=True)
class MappedCall:
    """CCL024: ``task.map/starmap(items)`` or ``task.chunks(items, size)``; ``items`` None
    when not known statically."""

    how: str
    container: Any
    size: Optional[int]
    items: Optional[Tuple[ReplayValue, ...]]

    def to_json(self) -> Json:
        return {"how": self.how, "container": self.container, "size": self.size,
                "items": _values_json(self.items)}

    @classmethod
    def from_json(cls, data: Json) -> "MappedCall":
        return cls(data.get("how"), data.get("container"), data.get("size"),
                   _values(data.get("items")))


@dataclass(frozen=True)
class ChainSpot:
    """CCL003: the independent chain, and its tasks."""

    line: Optional[int]
    column: Optional[int]
    tasks: Tuple[Optional[str], ...]

    def to_json(self) -> Json:
        return {"line": self.line, "column": self.column, "tasks": list(self.tasks)}

    @classmethod
    def from_json(cls, data: Json) -> "ChainSpot":
        return cls(data.get("line"), data.get("column"), tuple(data.get("tasks") or ()))


@dataclass(frozen=True)
class CalledSpot:
    """CCL007: the task called where a signature belongs, how, and where in the canvas."""

    task: Optional[str]
    how: str
    position: Any
    line: Optional[int]

    def to_json(self) -> Json:
        return {"task": self.task, "how": self.how, "position": self.position,
                "line": self.line}

    @classmethod
    def from_json(cls, data: Json) -> "CalledSpot":
        return cls(data.get("task"), data.get("how") or "delay", data.get("position"),
                   data.get("line"))


@dataclass(frozen=True)
class ChordApp:
    """CCL008: the chord's app and its result backend (``backend_kind`` "none", "rpc"...)."""

    module: Optional[str]
    variable: Optional[str]
    backend: Any
    backend_kind: Optional[str]
    task_ignore_result: Any

    def to_json(self) -> Json:
        return {"module": self.module, "variable": self.variable, "backend": self.backend,
                "backend_kind": self.backend_kind, "task_ignore_result": self.task_ignore_result}

    @classmethod
    def from_json(cls, data: Json) -> "ChordApp":
        return cls(data.get("module"), data.get("variable"), data.get("backend"),
                   data.get("backend_kind"), data.get("task_ignore_result"))


@dataclass(frozen=True)
class Receiver:
    """CCL019/CCL020: a task receiving the canvas's arguments or options; ``effect`` (CCL019):
    "refused", "dropped" or taken by ``**kwargs``."""

    task: Optional[str]
    line: Optional[int]
    effect: Optional[str] = None

    def to_json(self) -> Json:
        data: Json = {"task": self.task}
        if self.effect is not None:
            data["effect"] = self.effect
        data["line"] = self.line
        return data

    @classmethod
    def from_json(cls, data: Json) -> "Receiver":
        return cls(data.get("task"), data.get("line"), data.get("effect"))


@dataclass(frozen=True)
class PerMember:
    """CCL022: the chain whose step after two groups runs once per member of the second."""

    line: Optional[int]
    column: Optional[int]
    members: int
    body: Tuple[Optional[str], ...]
    after: Tuple[Optional[str], ...]

    def to_json(self) -> Json:
        return {"line": self.line, "column": self.column, "members": self.members,
                "body": list(self.body), "after": list(self.after)}

    @classmethod
    def from_json(cls, data: Json) -> "PerMember":
        return cls(data.get("line"), data.get("column"), data.get("members"),
                   tuple(data.get("body") or ()), tuple(data.get("after") or ()))


@dataclass(frozen=True)
class PollingBackend:
    """CCL027: the chord's result backend, which waits with ``celery.chord_unlock``."""

    url: Any
    scheme: Any

    def to_json(self) -> Json:
        return {"url": self.url, "scheme": self.scheme}

    @classmethod
    def from_json(cls, data: Json) -> "PollingBackend":
        return cls(data.get("url"), data.get("scheme"))


def _names(data: Optional[List[Any]]) -> Optional[Tuple[Any, ...]]:
    return None if data is None else tuple(data)


# ---- a finding's replay data ----


@dataclass(frozen=True)
class Replay:
    """A finding's replay data: the workflow (flagged signature marked) with its ``tasks``, or
    the ``task`` the finding is about and the ``workflows`` using it, and what the rule adds
    for its confirmer. Every field may be absent (None); ``to_json`` writes the present ones
    in the order the harness has always read them."""

    function: Optional[NotATaskFunction] = None
    missing: Optional[MissingAttribute] = None
    method: Optional[str] = None
    workflow: Optional[ReplayWorkflow] = None  # written as canvas, application, callbacks
    task: Optional[ReplayTask] = None
    handler: Optional[SwallowingHandler] = None
    network: Optional[NetworkCall] = None
    wait: Optional[WaitCall] = None
    returned_set: Optional[ReturnedSet] = None
    large_return: Optional[LargeReturn] = None
    long_delay: Optional[LongDelay] = None
    mapped: Optional[MappedCall] = None
    workflows: Optional[Tuple["Replay", ...]] = None
    tasks: Optional[Mapping[str, ReplayTask]] = None
    flagged_task: Optional[str] = None  # CCL001/CCL002/CCL009: always a known task's
    chain: Optional[ChainSpot] = None
    called: Optional[CalledSpot] = None
    app: Optional[ChordApp] = None
    ignoring: Optional[Tuple[Optional[str], ...]] = None  # CCL008: header tasks ignoring results
    options: Optional[Tuple[str, ...]] = None  # CCL019: the options passed as arguments
    receivers: Optional[Tuple[Receiver, ...]] = None
    losing: Optional[Mapping[str, Tuple[Optional[str], ...]]] = None  # CCL025: option -> tasks
    per_member: Optional[PerMember] = None
    backend: Optional[PollingBackend] = None
    pending: Optional[Tuple[Optional[str], ...]] = None  # CCL027: the header task kept running

    def to_json(self) -> Json:
        data: Json = {}
        if self.function is not None:
            data["function"] = self.function.to_json()
        if self.missing is not None:
            data["missing"] = self.missing.to_json()
        if self.method is not None:
            data["method"] = self.method
        if self.workflow is not None:
            data.update(self.workflow.to_json())
        if self.task is not None:
            data["task"] = self.task.to_json()
        for flat in (self.handler, self.network, self.wait, self.returned_set,
                     self.large_return, self.long_delay, self.mapped):
            if flat is not None:
                data.update(flat.to_json())
        if self.workflows is not None:
            data["workflows"] = [w.to_json() for w in self.workflows]
        if self.tasks is not None:
            data["tasks"] = {name: task.to_json() for name, task in self.tasks.items()}
        if self.flagged_task is not None:
            data["flagged_task"] = self.flagged_task
        for key, nested in (("chain", self.chain), ("called", self.called), ("app", self.app)):
            if nested is not None:
                data[key] = nested.to_json()
        for key, names in (("ignoring", self.ignoring), ("options", self.options)):
            if names is not None:
                data[key] = list(names)
        if self.receivers is not None:
            data["receivers"] = [r.to_json() for r in self.receivers]
        if self.losing is not None:
            data["losing"] = {key: list(names) for key, names in self.losing.items()}
        if self.per_member is not None:
            data["per_member"] = self.per_member.to_json()
        if self.backend is not None:
            data["backend"] = self.backend.to_json()
        if self.pending is not None:
            data["pending"] = list(self.pending)
        return data

    @classmethod
    def from_json(cls, data: Json) -> "Replay":
        def nested(key, kind):
            return None if data.get(key) is None else kind.from_json(data[key])

        def flat(trigger, kind):
            return kind.from_json(data) if trigger in data else None

        workflows = data.get("workflows")
        tasks = data.get("tasks")
        return cls(
            function=nested("function", NotATaskFunction),
            missing=nested("missing", MissingAttribute),
            method=data.get("method"),
            workflow=ReplayWorkflow.from_json(data) if "canvas" in data else None,
            task=_task(data.get("task")),
            handler=flat("handler", SwallowingHandler),
            network=flat("network_call", NetworkCall),
            wait=flat("wait_method", WaitCall),
            returned_set=flat("returns", ReturnedSet),
            large_return=flat("payload", LargeReturn),
            long_delay=flat("visibility_timeout", LongDelay),
            mapped=flat("container", MappedCall),
            workflows=None if workflows is None
            else tuple(cls.from_json(w) for w in workflows if isinstance(w, dict)),
            tasks=None if tasks is None
            else {name: ReplayTask.from_json(spec) for name, spec in tasks.items()},
            flagged_task=data.get("flagged_task"),
            chain=nested("chain", ChainSpot),
            called=nested("called", CalledSpot),
            app=nested("app", ChordApp),
            ignoring=_names(data.get("ignoring")),
            options=_names(data.get("options")),
            receivers=None if data.get("receivers") is None
            else tuple(Receiver.from_json(r) for r in data["receivers"]),
            losing=None if data.get("losing") is None
            else {key: tuple(names) for key, names in data["losing"].items()},
            per_member=nested("per_member", PerMember),
            backend=nested("backend", PollingBackend),
            pending=_names(data.get("pending")),
        )

    def replayed_workflows(self) -> List[ReplayWorkflow]:
        """The workflows this data holds: its own, or those of its ``workflows`` list."""
        if self.workflow is not None:
            return [self.workflow]
        return [w.workflow for w in self.workflows or () if w.workflow is not None]


# ---- built from the workflow model ----

_JSON_SCALARS = (str, int, float, bool, type(None))


def replay_value(value: Value) -> ReplayValue:
    """A literal argument as itself; anything else as a placeholder naming its source text."""
    constant = literal(value.expr) if value.expr is not None else MISSING
    if constant is not MISSING and _is_json(constant):
        return ReplayValue.literal(list(constant) if isinstance(constant, tuple) else constant)
    return ReplayValue.placeholder(value.text)


def _is_json(constant: Any) -> bool:
    if isinstance(constant, (list, tuple)):
        return all(_is_json(item) for item in constant)
    return isinstance(constant, _JSON_SCALARS)


# Callbacks given to a group itself (``group(..., link=cb)``, ``g.set(link=cb)``), by the
# group node they were given to: (how, callback) with how "keyword" or "set" (CCL010).
GroupLinks = Dict[int, List[Tuple[str, Node]]]


def replay_name(task) -> Optional[str]:
    """The name a task is replayed under: its registered name, or when that is not a literal
    (``name=f"send_{channel}"`` in a factory) Celery's default one, for the shadow only."""
    if task is None:
        return None
    return task.name if task.name is not None else f"{task.module}.{task.display}"


def task_replay(task) -> ReplayTask:
    """``Task.describe()`` typed: what a shadow of the task needs."""
    return ReplayTask.from_json(task.describe())


def replay_node(node: Optional[Node], flagged: Optional[SignatureNode] = None,
                group_links: Optional[GroupLinks] = None) -> ReplayNode:
    if isinstance(node, SignatureNode):
        return ReplaySignature(
            replay_name(node.task),
            tuple(replay_value(v) for v in node.args) if node.args_known else None,
            {k: replay_value(v) for k, v in node.kwargs} if node.args_known else None,
            node.immutable, node.via, node is flagged, node.span.line if node.span else None,
            {k: literal(v) for k, v in node.options if _is_json(literal(v, object()))})
    if isinstance(node, ChainNode):
        return ReplayChain(tuple(replay_node(s, flagged, group_links) for s in node.steps))
    if isinstance(node, GroupNode):
        members = None if node.members is None else tuple(
            replay_node(m, flagged, group_links) for m in node.members)
        shapes = None
        if node.members is None and node.all_shapes and node.shapes:
            # Built by a comprehension: the harness replays two members of each shape.
            shapes = tuple(replay_node(m, flagged, group_links) for m in node.shapes)
        links = tuple(ReplayGroupLink(how, replay_node(callback, flagged))
                      for how, callback in (group_links or {}).get(id(node)) or ())
        return ReplayGroup(members, node.unrolled, shapes, links)
    if isinstance(node, ChordNode):
        return ReplayChord(replay_node(node.header, flagged, group_links),
                           replay_node(node.body, flagged, group_links))
    if isinstance(node, CalledNode):
        return ReplayCalled(getattr(node.task, "name", None), node.how)
    return ReplayUnknown()


def workflow_replay(workflow: Workflow, flagged: Optional[SignatureNode] = None,
                    group_links: Optional[GroupLinks] = None) -> Replay:
    """The workflow as the harness replays it, with a shadow spec of every task in it."""
    application = workflow.application
    tasks = {}
    nodes = [workflow.canvas] + [c.callback for c in workflow.callbacks]
    nodes += [callback for links in (group_links or {}).values() for _, callback in links]
    for node in nodes:
        for signature in signatures(node):
            task = signature.task
            if task is not None:
                tasks[replay_name(task)] = replace(task_replay(task), name=replay_name(task))
    applied = None if application is None else ReplayApplication(
        application.how,
        None if application.args is None else tuple(replay_value(v) for v in application.args),
        None if application.kwargs is None
        else {k: replay_value(v) for k, v in application.kwargs})
    return Replay(
        workflow=ReplayWorkflow(
            replay_node(workflow.canvas, flagged, group_links), applied,
            tuple(ReplayCallback(c.kind, replay_node(c.callback, flagged))
                  for c in workflow.callbacks)),
        tasks=tasks)


def invocation_replay(invocation: Invocation) -> Replay:
    """The invocation's workflow with its signature flagged, and the flagged task's name."""
    return replace(workflow_replay(invocation.workflow, invocation.signature),
                   flagged_task=replay_name(invocation.signature.task))
