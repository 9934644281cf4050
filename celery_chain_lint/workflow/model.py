"""Canvas nodes, and how arguments flow through them at run time.

The nodes mirror Celery's canvas after its own rewriting (``Signature.__or__``,
``_chain.__or__``, ``group.__or__``): a chain is a flat list of steps, ``group | task`` is a
chord, and a one-member group inside a chain is unrolled. ``invocations()`` then says, for every
signature, what Celery will pass it: the previous step's result (one value: a group's results
arrive as one list), the arguments the whole canvas was applied with, or nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator, List, Optional, Tuple, Union

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (
    POSITIONAL_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    ModuleFacts,
)


@dataclass(frozen=True, eq=False)
class Value:
    """One argument as the reader wrote it (its source text) and, if literal, its value."""

    text: str
    expr: Optional[ir.Expr] = None


# The file a node's span is in, when it is not the workflow's (a canvas kept in a variable of
# another module, a helper function of another module): ``where(workflow, node)``.
def _path():
    return field(default=None, kw_only=True)


@dataclass(frozen=True, eq=False)
class SignatureNode:
    """One task invocation: ``task.s(...)``, ``task.si(...)``, ``signature("name", ...)``..."""

    task: object  # index.tasks.Task, or None when the task is not known
    span: Optional[ir.Span]
    args: Tuple[Value, ...] = ()
    kwargs: Tuple[Tuple[str, Value], ...] = ()
    args_known: bool = True  # False after ``*args``, ``**kwargs`` or non-literal ``args=``
    immutable: bool = False
    # How it was written: "s", "si", "signature", "by-name", "delay" (a task applied directly).
    via: str = "s"
    method_span: Optional[ir.Span] = None  # the ``s`` of ``.s(``, for fixes
    options: Tuple[Tuple[str, ir.Expr], ...] = ()
    path: Optional[str] = _path()


@dataclass(frozen=True, eq=False)
class ChainNode:
    steps: Tuple["Node", ...]
    span: Optional[ir.Span]
    # What Celery holds once it has composed the source's operators, when that is not a
    # chain: "chord:group" (a chord whose body is a group of two or more), "chord". ``chain(g1,
    # g2, ...)`` starting with a group is built with ``|`` from that group (CCL022).
    celery_kind: Optional[str] = None
    # The index of the step Celery runs once per member of the group before it, each time
    # with that one member's result: ``g1 | g2 | g3`` is ``_chain(chord(g1, g2), g3)``, whose
    # chord body (a group) carries the rest of the chain to each of its members (CCL022).
    per_member: Optional[int] = None
    path: Optional[str] = _path()


@dataclass(frozen=True, eq=False)
class GroupNode:
    members: Optional[Tuple["Node", ...]]  # None: built from a generator, a splat, a loop...
    span: Optional[ir.Span]
    # A one-member group inside a chain runs as its member alone: the next step gets a scalar.
    unrolled: bool = False
    # When ``members`` is None: what members are built as, their count unknown. A
    # comprehension's element (``group(fetch.s(u) for u in urls)``: ``fetch.s(<u>)``, its
    # arguments from the comprehension's variables known in number, not in value), and the
    # plain items beside starred comprehensions (``[a.s(), *(b.s(x) for x in xs)]``).
    shapes: Tuple["Node", ...] = ()
    # Whether every member is one of ``shapes`` (False after ``*sigs``, a list not seen).
    all_shapes: bool = False
    path: Optional[str] = _path()

    @property
    def parts(self) -> Tuple["Node", ...]:
        """The members, or when their list is not known the shapes they are built as: what
        every rule that does not need the count reads (arguments, results, options)."""
        return self.members if self.members is not None else self.shapes


@dataclass(frozen=True, eq=False)
class ChordNode:
    header: GroupNode
    body: Optional["Node"]  # None: ``chord(header)`` waiting for its body
    span: Optional[ir.Span]
    path: Optional[str] = _path()


@dataclass(frozen=True, eq=False)
class CalledNode:
    """A task called or applied where a signature belongs: ``chain(add.delay(1, 2), ...)``."""

    task: object
    span: Optional[ir.Span]
    how: str  # "delay", "apply_async" or "call"
    call: ir.Call = None
    path: Optional[str] = _path()


@dataclass(frozen=True, eq=False)
class UnknownNode:
    """A canvas element the analyser cannot follow; nothing is reported about it."""

    span: Optional[ir.Span]
    path: Optional[str] = _path()


Node = Union[SignatureNode, ChainNode, GroupNode, ChordNode, CalledNode, UnknownNode]


@dataclass(frozen=True, eq=False)
class Application:
    """``canvas.delay(...)``, ``canvas.apply_async(args, kwargs, link=...)``, ``canvas(...)``."""

    how: str
    span: Optional[ir.Span]
    args: Optional[Tuple[Value, ...]] = ()  # None when not statically known
    kwargs: Optional[Tuple[Tuple[str, Value], ...]] = ()
    options: Tuple[Tuple[str, ir.Expr], ...] = ()


@dataclass(frozen=True, eq=False)
class Callback:
    """A link (``link=``, ``.link()``) or errback (``link_error=``, ``.on_error()``)."""

    parent: Node
    callback: Node
    kind: str  # "link" or "error"
    span: Optional[ir.Span] = None


@dataclass(eq=False)
class Workflow:
    """A canvas found in the code, with how it is used there."""

    module: ModuleFacts
    scope: str  # qualname of the enclosing function, "" at module level
    root_kind: str  # "expr", "return", "assign" or "other"
    canvas: Node
    application: Optional[Application] = None
    callbacks: List[Callback] = field(default_factory=list)
    expr: Optional[ir.Expr] = None

    @property
    def applied(self) -> bool:
        return self.application is not None


@dataclass(frozen=True, eq=False)
class Invocation:
    """What Celery will pass one signature when the workflow runs.

    ``prepended`` are the positional values put before the signature's own arguments: the
    previous step's result, or the arguments the canvas was applied with (None: not known).
    ``complete`` is False where more arguments may still come (a canvas not applied in view).
    """

    signature: SignatureNode
    workflow: Workflow
    prepended: Optional[Tuple[Value, ...]]
    extra_kwargs: Optional[Tuple[Tuple[str, Value], ...]]
    complete: bool
    from_parent: bool  # the prepended value comes from the workflow, not from the caller
    # What that prepended value is, for messages: "the previous result", "the failed task's id".
    received: str = "the previous result"

    def positional(self) -> Tuple[Value, ...]:
        return (self.prepended or ()) + self.signature.args

    def keywords(self) -> Tuple[Tuple[str, Value], ...]:
        return self.signature.kwargs + (self.extra_kwargs or ())

    def known(self) -> bool:
        return (self.signature.task is not None and self.signature.args_known
                and self.prepended is not None and self.extra_kwargs is not None)

    def without_parent_result(self) -> "Invocation":
        return replace(self, prepended=(), from_parent=False)


def where(workflow: "Workflow", node) -> str:
    """The path of the file ``node``'s span is in: a finding at that span is reported there."""
    return getattr(node, "path", None) or workflow.module.path


# ---- argument flow ----


def describe_result(node: Node) -> Value:
    """How the result a step hands to the next one reads in a message."""
    if isinstance(node, SignatureNode):
        return Value(f"<result of {task_display(node)}>")
    if isinstance(node, GroupNode):
        if node.unrolled and node.members:
            return describe_result(node.members[0])
        return Value("<list of the group's results>")
    if isinstance(node, ChordNode):
        return describe_result(node.body) if node.body is not None else Value("<result>")
    if isinstance(node, ChainNode) and node.steps:
        return describe_result(node.steps[-1])
    return Value("<previous result>")


def task_display(node: SignatureNode) -> str:
    return getattr(node.task, "display", None) or "task"


def invocations(workflow: Workflow) -> Iterator[Invocation]:
    """Every signature of the workflow with the arguments Celery will give it."""
    application = workflow.application
    if application is not None:
        start = (application.args, application.kwargs, True)
    else:
        start = ((), (), False)
    yield from _flow(workflow, workflow.canvas, *start, from_parent=False)
    if raises_at_once(workflow):
        return  # ``group.apply_async(link=cb)``: no callback is ever called (CCL010)
    for callback in workflow.callbacks:
        if callback.kind == "link" and isinstance(callback.parent, GroupNode):
            # ``group.link(cb)`` links an immutable clone of cb to the first member only.
            if isinstance(callback.callback, SignatureNode):
                yield from _flow(workflow, replace(callback.callback, immutable=True), (), (),
                                 True, from_parent=False)
        elif callback.kind == "link":
            yield from _flow(workflow, callback.callback, (describe_result(callback.parent),), (),
                             True, from_parent=True)
        elif isinstance(callback.callback, SignatureNode):
            yield errback_invocation(workflow, callback.callback)


def raises_at_once(workflow: Workflow) -> bool:
    """``group(...).apply_async(link=cb)`` (or ``link_error=``): Celery 5.7's
    ``group.apply_async`` raises ``TypeError: Cannot add link to group`` before anything is
    sent, so its callbacks are never called (CCL010 reports it)."""
    application = workflow.application
    canvas = workflow.canvas
    return (application is not None and application.how == "apply_async"
            and isinstance(canvas, GroupNode) and not canvas.unrolled
            and any(callback.parent is canvas for callback in workflow.callbacks))


def errback_invocation(workflow: Workflow, errback: SignatureNode) -> Invocation:
    """How the worker calls an errback (``celery.backends.base._call_task_errbacks``).

    A function task, not ``bind=True``, with more than one positional parameter (or ``*args``)
    is called inline as ``errback(request, exc, traceback)``; any other errback is sent as a
    task with the failed task's id prepended. An immutable errback gets neither: called inline,
    ``Signature.__call__`` merges nothing into it either (observed on Celery 5.7.0: an
    ``echo.si("msg", key=...)`` errback of two parameters ran with its own arguments).
    """
    task = errback.task
    params = getattr(task, "params", None)
    if errback.immutable:
        return Invocation(errback, workflow, (), (), True, False)
    if params is None:
        return Invocation(errback, workflow, None, (), True, True, "the failed task's id")
    inline = (not task.bind and task.class_facts is None
              and (_errback_arity(params, errback) > 1
                   or any(p.kind == VAR_POSITIONAL for p in params.items)))
    if inline:
        # Not ``from_parent``: ``.si()`` would not fix it the CCL001 way (the request,
        # exception and traceback are what the errback is for), so it is CCL002.
        values = (Value("<request>"), Value("<exception>"), Value("<traceback>"))
        return Invocation(errback, workflow, values, (), True, False,
                          "the request, exception and traceback")
    return Invocation(errback, workflow, (Value("<id of the failed task>"),), (), True, True,
                      "the failed task's id")


def _errback_arity(params, errback: SignatureNode) -> int:
    """Positional parameters Celery counts to decide whether an errback is called inline.

    Celery 5.7 (``Backend._errback_arity_greater``) counts what is left of a mutable errback
    once its stored arguments are bound, as ``partial(header, *args, **kwargs)`` would:
    ``on_fail(exc, label)`` linked as ``on_fail.s("payment")`` has one left, so it is sent as a
    task with the failed task's id. Observed: ``exc`` received the task id.
    """
    positional = [p for p in params.items if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    if errback.immutable or not (errback.args or errback.kwargs) or not errback.args_known:
        return len(positional)
    names = {p.name for p in params.items}
    accepts_varkw = any(p.kind == VAR_KEYWORD for p in params.items)
    stored = len(errback.args)
    if stored > len(positional) and not any(p.kind == VAR_POSITIONAL for p in params.items):
        return len(positional)  # partial() binding fails: Celery counts the whole header
    left = positional[stored:]
    for index, param in enumerate(left):
        if any(key == param.name for key, _ in errback.kwargs):
            if param.kind == POSITIONAL_ONLY:
                return len(positional)
            return index  # a parameter given by keyword and those after it become keyword-only
    if any(key not in names and not accepts_varkw for key, _ in errback.kwargs):
        return len(positional)
    return len(left)


def _flow(workflow: Workflow, node: Node, prepended, extra_kwargs, complete: bool,
          from_parent: bool) -> Iterator[Invocation]:
    # Iterative over chain steps; recursion only follows nesting, which the extractor bounds.
    if isinstance(node, SignatureNode):
        if node.immutable:  # immutable signatures drop incoming args and kwargs alike
            prepended, extra_kwargs, from_parent = (), (), False
        yield Invocation(node, workflow, prepended, extra_kwargs, complete, from_parent)
    elif isinstance(node, ChainNode):
        for step in node.steps:
            yield from _flow(workflow, step, prepended, extra_kwargs, complete, from_parent)
            prepended, extra_kwargs, complete, from_parent = (
                (describe_result(step),), (), True, True)
    elif isinstance(node, GroupNode):
        for member in node.parts:
            yield from _flow(workflow, member, prepended, extra_kwargs, complete, from_parent)
    elif isinstance(node, ChordNode):
        yield from _flow(workflow, node.header, prepended, extra_kwargs, complete, from_parent)
        if node.body is not None:
            yield from _flow(workflow, node.body, (describe_result(node.header),), (), True, True)


def argument_receivers(node: Node) -> Optional[List[SignatureNode]]:
    """The signatures that the arguments a canvas is applied with are merged into
    (``canvas.delay(*args, **kwargs)``, ``canvas.apply_async(args, kwargs)``): a chain's
    first task, every member of a group, every member of a chord's header. Each keeps them
    or, immutable, drops them (``Signature._merge``).

    For a group built by a comprehension, the shapes of its members when every member has one.
    None when that is not known: an element the analyser cannot follow, a group built
    dynamically, or a chain led by a chord (Celery 5.7 merges the keywords into the chord's
    own, observed: none reaches its header).
    """
    if isinstance(node, SignatureNode):
        return [node]
    if isinstance(node, ChainNode):
        if not node.steps or isinstance(node.steps[0], ChordNode):
            return None
        return argument_receivers(node.steps[0])
    if isinstance(node, ChordNode):
        return argument_receivers(node.header)
    if isinstance(node, GroupNode) and (node.members or node.all_shapes and node.shapes):
        found: List[SignatureNode] = []
        for member in node.parts:
            receivers = argument_receivers(member)
            if receivers is None:
                return None
            found.extend(receivers)
        return found
    return None


def nodes(node: Node) -> Iterator[Node]:
    """Every node of a canvas, outermost first, in source order (iterative: canvases nest)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, ChainNode):
            stack.extend(reversed(current.steps))
        elif isinstance(current, GroupNode):
            stack.extend(reversed(current.parts))
        elif isinstance(current, ChordNode):
            if current.body is not None:
                stack.append(current.body)
            stack.append(current.header)


def signatures(node: Node) -> Iterator[SignatureNode]:
    """Every signature inside a canvas, in order."""
    return (n for n in nodes(node) if isinstance(n, SignatureNode))


def kind_of(node: Node) -> str:
    """What a reader calls the canvas: "chain", "chord", "group" or "signature"."""
    if isinstance(node, ChainNode):
        return "chain"
    if isinstance(node, ChordNode):
        return "chord"
    if isinstance(node, GroupNode):
        return "group"
    return "signature"
