"""Builds workflow trees from expressions, using the resolver to know what each name is.

An expression is a canvas only when it is built by Celery: ``.s()``/``.si()``/``.signature()``
on a resolved task, ``chain``/``group``/``chord``/``signature`` resolved to Celery's own, or
``|`` between canvases. ``itertools.chain``, ``re``'s ``.group()`` or a class with an ``s``
method never resolve to those, so they are not canvases.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (
    POSITIONAL_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    ModuleFacts,
    Root,
)
from celery_chain_lint.index.resolver import Resolver
from celery_chain_lint.index.symbols import (
    AppSym,
    External,
    FunctionSym,
    MemberSym,
    TaskSym,
    ValueSym,
    celery_name,
)
from celery_chain_lint.index.tasks import TaskIndex, literal
from celery_chain_lint.workflow.model import (
    Application,
    Callback,
    CalledNode,
    ChainNode,
    ChordNode,
    GroupNode,
    Node,
    SignatureNode,
    UnknownNode,
    Value,
    Workflow,
    signatures,
)

APPLY_METHODS = ("delay", "apply_async", "apply")
# ``functools.reduce(operator.or_, sigs)`` composes a chain.
REDUCE = frozenset({"functools.reduce", "_functools.reduce"})
OR_OPERATORS = frozenset({"operator.or_", "operator.__or__", "_operator.or_"})
# Methods that return a copy we cannot follow (``clone(args=...)`` changes the arguments).
OPAQUE_METHODS = frozenset({"clone", "partial", "replace", "map", "starmap", "chunks"})
MAX_NESTING = 50
# Canvas nodes built for one root statement (or one direct ``build``): module-level variables
# built from each other twice (``c2 = c1 | c1``) would otherwise double the work at every level.
BUILD_BUDGET = 400
# Paths through the branches that built a root's values (``ir.Alternatives``) followed, each
# a workflow of its own; beyond this many, the values are not known.
MAX_PATHS = 8


# (members, None when not known; shapes of the members when not known; whether every member
# has one of those shapes): ``WorkflowBuilder.elements``.
Elements = Tuple[Optional[List[Node]], Tuple[Node, ...], bool]


class _ChordHeader:
    """``chord(header)``: a callable that becomes a chord once given its body."""

    def __init__(self, header: GroupNode, span):
        self.header, self.span = header, span


class WorkflowBuilder:
    def __init__(self, resolver: Resolver, tasks: TaskIndex):
        self.resolver = resolver
        self.tasks = tasks
        self._depth = 0
        self._budget = BUILD_BUDGET
        self._in_root = False
        self._helpers: set = set()  # helper functions being inlined (``helper``): no cycle

    # ---- finding workflows in the code ----

    def workflows(self, facts: ModuleFacts, root: Root) -> Iterator[Workflow]:
        """The outermost canvases (applied or not) inside one root expression; once per path
        through the branches that built it (``ir.Alternatives``), when every path gives a
        canvas the builder knows."""
        found: List[Workflow] = []
        for expr in self.paths(root.expr, facts.module):
            found.extend(self._workflows(facts, root, expr))
        return iter(found)

    def paths(self, expr: ir.Expr, module: str) -> List[ir.Expr]:
        """``expr`` for each path through the branches that built its values: an
        ``Alternatives`` whose options are not all canvases the builder knows (or too many
        paths) is a value not known."""
        if not any(isinstance(node, ir.Alternatives) for node in ir.walk(expr)):
            return [expr]
        outer = self._in_root
        if not outer:
            self._in_root, self._budget = True, BUILD_BUDGET
        try:
            unknown = {id(node) for node in ir.walk(expr)
                       if isinstance(node, ir.Alternatives) and not self.known(node, module)}
        finally:
            self._in_root = outer
        if unknown:
            expr = ir.transform(expr, lambda node: ir.Opaque(
                kind="branches", span=node.span, text=node.text) if id(node) in unknown else None)
        return ir.variants(expr, MAX_PATHS) or [ir.transform(expr, lambda node: ir.Opaque(
            kind="branches", span=node.span, text=node.text)
            if isinstance(node, ir.Alternatives) else None)]

    def known(self, alternatives: ir.Alternatives, module: str) -> bool:
        """Whether every option builds a canvas (not unknown, not a plain value)."""
        return all(isinstance(self.build(option, module),
                              (SignatureNode, ChainNode, GroupNode, ChordNode))
                   for option in alternatives.options)

    def _workflows(self, facts: ModuleFacts, root: Root, expr: ir.Expr) -> List[Workflow]:
        found: List[Workflow] = []
        stack = [expr]
        seen = set()
        outer = self._in_root
        if not outer:
            self._in_root, self._budget = True, BUILD_BUDGET
        try:
            while stack:
                expr = stack.pop()
                if id(expr) in seen:
                    continue
                seen.add(id(expr))
                workflow = self.workflow_at(expr, facts, root)
                if workflow is not None:
                    found.append(workflow)
                    continue
                stack.extend(reversed(list(expr.children())))
        finally:
            self._in_root = outer
        return found

    def workflow_at(self, expr: ir.Expr, facts: ModuleFacts, root: Root) -> Optional[Workflow]:
        module = facts.module
        applied = self.application(expr, module)
        if applied is not None:
            canvas, application, callbacks = applied
            return Workflow(facts, root.scope, root.kind, canvas, application, callbacks, expr)
        linked = self.link_call(expr, module)
        if linked is not None:
            canvas, callbacks = linked
            return Workflow(facts, root.scope, root.kind, canvas, None, callbacks, expr)
        canvas = self.build(expr, module)
        if canvas is None or isinstance(canvas, UnknownNode):
            return None
        return Workflow(facts, root.scope, root.kind, canvas, None, [], expr)

    # ---- applications ----

    def application(self, expr: ir.Expr, module: str):
        """``X.delay(...)``, ``X.apply_async(...)``, ``X(...)`` on a canvas or a task."""
        if not isinstance(expr, ir.Call):
            return None
        func = expr.func
        if isinstance(func, ir.Attribute) and func.attr in APPLY_METHODS:
            target = self.task_or_canvas(func.value, module, expr)
            if target is None:
                return None
            if func.attr == "delay":
                application = Application("delay", expr.span, *_call_arguments(expr))
                callbacks_options = ()
            else:
                application, callbacks_options = self.apply_async_arguments(expr, func.attr)
            callbacks = [self.callback(target, kind, value, module)
                         for kind, value in callbacks_options]
            return target, application, [c for c in callbacks if c is not None]
        if isinstance(func, ir.Attribute) and func.attr == "send_task":
            return self.send_task(expr, module)
        # ``chord(header)(body)`` builds and applies the chord in one call.
        callee = self.build_any(func, module)
        if isinstance(callee, _ChordHeader):
            body = self.build(expr.positional[0], module) if expr.positional else None
            chord = ChordNode(callee.header, body, expr.span)
            return chord, Application("call", expr.span), []
        if isinstance(callee, (ChainNode, GroupNode, ChordNode, SignatureNode)):
            return callee, Application("call", expr.span, *_call_arguments(expr)), []
        return None

    def send_task(self, call: ir.Call, module: str):
        """``app.send_task("proj.tasks.add", args=(1,), kwargs={...}, **options)``: the task
        registered under that name in the analysed code, sent at once with those arguments
        (Celery checks nothing when it sends by name: the task fails on the worker). A name
        no task of the analysed code is registered under (another service's) is not followed."""
        owner = self.resolver.resolve(call.func, module)
        if not (isinstance(owner, MemberSym) and isinstance(owner.owner, AppSym)
                or celery_name(owner) == "send_task") or call.has_splat:
            return None
        positional = call.positional
        name = literal(positional[0] if positional else call.keyword("name"), None)
        task = self.tasks.by_name(name) if isinstance(name, str) else None
        if task is None:
            return None
        args = _literal_args(positional[1] if len(positional) > 1 else call.keyword("args"))
        kwargs = _literal_kwargs(positional[2] if len(positional) > 2 else call.keyword("kwargs"))
        options = tuple((a.keyword, a.value) for a in call.args
                        if a.keyword and a.keyword not in ("name", "args", "kwargs"))
        node = SignatureNode(task, call.span, args or (), kwargs or (),
                             args_known=args is not None and kwargs is not None,
                             via="by-name", options=options)
        callbacks = []
        for key, value in options:
            if key in ("link", "link_error"):
                items = value.items if isinstance(value, ir.Sequence) else (value,)
                callbacks += [self.callback(node, "link" if key == "link" else "error", item,
                                            module) for item in items]
        return node, Application("apply_async", call.span, (), (), options), \
            [c for c in callbacks if c is not None]

    def task_or_canvas(self, expr: ir.Expr, module: str, call: ir.Call) -> Optional[Node]:
        symbol = self.resolver.resolve(expr, module)
        if isinstance(symbol, TaskSym):
            # ``task.delay(...)`` is ``task.s().delay(...)``: the call is where it is reported.
            return SignatureNode(symbol.task, call.span, via="delay")
        node = self.build(expr, module)
        return node if node is not None and not isinstance(node, UnknownNode) else None

    def apply_async_arguments(self, call: ir.Call, how: str):
        positional = call.positional
        args_expr = positional[0] if positional else call.keyword("args")
        kwargs_expr = positional[1] if len(positional) > 1 else call.keyword("kwargs")
        args = _literal_args(args_expr)
        kwargs = _literal_kwargs(kwargs_expr)
        if call.has_splat:
            args = kwargs = None
        options = tuple((a.keyword, a.value) for a in call.args
                        if a.keyword and a.keyword not in ("args", "kwargs"))
        callbacks = []
        for key, value in options:
            if key in ("link", "link_error"):
                items = value.items if isinstance(value, ir.Sequence) else (value,)
                callbacks += [("link" if key == "link" else "error", item) for item in items]
        return Application(how, call.span, args, kwargs, options), callbacks

    def callback(self, parent: Node, kind: str, expr: ir.Expr, module: str) -> Optional[Callback]:
        node = self.build(expr, module)
        if node is None:
            return None
        return Callback(parent, node, kind, expr.span)

    def link_call(self, expr: ir.Expr, module: str):
        """``sig.link(callback)`` / ``sig.link_error(errback)`` / ``sig.on_error(errback)``."""
        if not (isinstance(expr, ir.Call) and isinstance(expr.func, ir.Attribute)
                and expr.func.attr in ("link", "link_error", "on_error") and expr.positional):
            return None
        parent = self.build(expr.func.value, module)
        if parent is None or isinstance(parent, UnknownNode):
            return None
        kind = "link" if expr.func.attr == "link" else "error"
        callback = self.callback(parent, kind, expr.positional[0], module)
        return parent, [callback] if callback is not None else []

    # ---- canvases ----

    def build(self, expr: Optional[ir.Expr], module: str) -> Optional[Node]:
        """The canvas ``expr`` builds, UnknownNode if it is one we cannot follow, else None."""
        node = self.build_any(expr, module)
        return None if isinstance(node, _ChordHeader) else node

    def build_any(self, expr: Optional[ir.Expr], module: str):
        if expr is None:
            return None
        if self._depth == 0 and not self._in_root:
            self._budget = BUILD_BUDGET
        if self._depth > MAX_NESTING or self._budget <= 0:
            return UnknownNode(expr.span)
        self._budget -= 1
        self._depth += 1
        try:
            node = self._build(expr, module)
        finally:
            self._depth -= 1
        if node is not None:
            self._locate(node, module)
        return node

    def _locate(self, node, module: str) -> None:
        """Gives the nodes just built from ``module``'s code that module's path (``where``):
        their spans are in that file, which is not the workflow's for a canvas kept in a
        variable of another module or returned by a helper there. A node with a path was
        built by a nested ``build_any``, and so was everything below it."""
        facts = self.resolver.modules.get(module)
        if facts is None or not facts.path:
            return
        stack = [node.header if isinstance(node, _ChordHeader) else node]
        while stack:
            current = stack.pop()
            if current.path is not None:
                continue
            object.__setattr__(current, "path", facts.path)  # just built, shared by none
            if isinstance(current, ChainNode):
                stack.extend(current.steps)
            elif isinstance(current, GroupNode):
                stack.extend(current.parts)
            elif isinstance(current, ChordNode):
                stack.append(current.header)
                if current.body is not None:
                    stack.append(current.body)

    def _build(self, expr: ir.Expr, module: str):
        if isinstance(expr, ir.Scoped):
            return self.build_any(expr.value, expr.module)
        if isinstance(expr, ir.Alternatives):
            # Outside a root's paths (``workflows``): a canvas only if every path gives one,
            # and then which one is not known.
            return UnknownNode(expr.span) if self.known(expr, module) else None
        if isinstance(expr, ir.BinOp):
            return self.pipe(expr, module)
        if isinstance(expr, ir.Call):
            return self.call(expr, module)
        if isinstance(expr, (ir.Name, ir.Attribute, ir.Imported)):
            symbol = self.resolver.resolve(expr, module)
            if isinstance(symbol, ValueSym):  # a canvas kept in a module-level variable
                return self.build_any(symbol.expr, symbol.module)
        return None

    def pipe(self, expr: ir.BinOp, module: str) -> Optional[Node]:
        left = self.build(expr.left, module)
        right = self.build(expr.right, module)
        if left is None or right is None:
            return None  # ``flags | MASK`` or a dict merge: not a canvas
        called, unsure = (CalledNode,), (CalledNode, UnknownNode)
        if isinstance(left, called) and isinstance(right, unsure) or \
                isinstance(right, called) and isinstance(left, unsure):
            # ``add(1, 2) | add(3, 4)`` ors two return values: a called task is a misplaced
            # signature only next to a canvas.
            return None
        node = combine(left, right, expr.span)
        if isinstance(node, ChainNode):
            kind, broken = celery_or(celery_kind(left, leading=True), celery_kind(right))
            per_member = None
            if kind in BROKEN:
                per_member = left.per_member if isinstance(left, ChainNode) else None
                if per_member is None and broken:
                    per_member = len(left.steps) if isinstance(left, ChainNode) else 1
            node = replace(node, celery_kind=kind if kind != "chain" else None,
                           per_member=per_member)
        return node

    def call(self, expr: ir.Call, module: str):
        func = expr.func
        if isinstance(func, ir.Attribute):
            method = func.attr
            if method in ("s", "si", "signature", "subtask"):
                symbol = self.resolver.resolve(func.value, module)
                if isinstance(symbol, TaskSym):
                    return self.task_signature(symbol.task, expr, method)
                if isinstance(symbol, AppSym) and method == "signature":
                    return self.by_name(expr, module)
                return None
            if method == "set":
                inner = self.build(func.value, module)
                return with_options(inner, expr) if inner is not None else None
            if method in OPAQUE_METHODS:
                inner = self.build(func.value, module)
                return UnknownNode(expr.span) if inner is not None else None
        callee = self.resolver.resolve(func, module)
        canonical = celery_name(callee)
        if isinstance(callee, MemberSym) and isinstance(callee.owner, AppSym) \
                and callee.name == "signature":
            canonical = "signature"
        if canonical == "chain":
            return self.chain(expr, module)
        if canonical == "group":
            return self.group(expr, module)
        if canonical == "chord":
            return self.chord(expr, module)
        if canonical in ("signature", "Signature"):
            return self.by_name(expr, module)
        if isinstance(callee, TaskSym):
            return CalledNode(callee.task, expr.span, "call", expr)
        if isinstance(callee, FunctionSym):
            return self.helper(callee, expr, module)
        if isinstance(callee, External) and callee.qualname in REDUCE:
            return self.reduce(expr, module)
        inner = self.build_any(func, module)
        if isinstance(inner, _ChordHeader):
            body = self.build(expr.positional[0], module) if expr.positional else None
            return ChordNode(inner.header, body, expr.span)
        if isinstance(func, ir.Attribute) and func.attr in APPLY_METHODS:
            symbol = self.resolver.resolve(func.value, module)
            if isinstance(symbol, TaskSym):
                return CalledNode(symbol.task, expr.span, func.attr, expr)
        return None

    def helper(self, function: FunctionSym, call: ir.Call, module: str) -> Optional[Node]:
        """The canvas a project function returns (``def pipeline(order): return
        chain(charge.s(order), receipt.s())``), its parameters bound to the call's arguments
        (a parameter not given, or given through a splat, is a value not known). Only a
        module-level function with no decorator and one ``return`` of a value, which builds
        a canvas (not a task called or applied: that helper sends it)."""
        defined = self.resolver.plain_function(function)
        if defined is None or defined.is_async or not defined.may_return_value() \
                or function in self._helpers:
            return None
        values = [value for _, value in defined.returns
                  if value is not None and not (isinstance(value, ir.Const) and value.value is None)]
        if len(values) != 1 or call.has_splat:
            return None
        arguments = _bind_parameters(defined, call, module, function.module)
        if arguments is None:
            return None
        value = ir.transform(values[0], lambda node: arguments.get(node.text)
                             if isinstance(node, ir.Opaque) and node.kind == "local" else None)
        self._helpers.add(function)
        try:
            node = self.build(value, function.module)
        finally:
            self._helpers.discard(function)
        if not isinstance(node, (SignatureNode, ChainNode, GroupNode, ChordNode)):
            return UnknownNode(call.span) if isinstance(node, UnknownNode) else None
        for signature in signatures(node):
            # No fix inside a helper: its other callers may rely on the signature as written.
            object.__setattr__(signature, "method_span", None)  # just built, shared by none
        return node

    def reduce(self, call: ir.Call, module: str) -> Optional[Node]:
        """``functools.reduce(operator.or_, sigs[, first])``: ``first | sigs[0] | ...``, each
        ``|`` as Celery rewrites it. A comprehension's shape stands for its members, taken
        to be at least two (a chain is built from a list to have several links)."""
        positional = call.positional
        if call.has_splat or any(a.keyword for a in call.args) or len(positional) not in (2, 3):
            return None
        operator = self.resolver.resolve(positional[0], module)
        if not (isinstance(operator, External) and operator.qualname in OR_OPERATORS):
            return None
        sequence, sequence_module = self.literal_sequence(positional[1], module)
        if sequence is None:
            return UnknownNode(call.span)
        members, shapes, every = self.sequence_elements(sequence, sequence_module)
        if members is None:
            if not every or len(shapes) != 1:
                return UnknownNode(call.span)
            members = [shapes[0], shapes[0]]
        if len(positional) == 3:
            members = [self.element(positional[2], module)] + list(members)
        if not any(isinstance(m, (SignatureNode, ChainNode, GroupNode, ChordNode))
                   for m in members):
            return None  # ``reduce(or_, [1, 2, 4])``, ``Q`` objects, task return values
        node = members[0]
        for member in members[1:]:
            node = combine(node, member, call.span)
        return node

    def literal_sequence(self, expr: ir.Expr, module: str):
        """(the list, tuple or comprehension ``expr`` is, directly or in a module-level
        variable; its module), or (None, module)."""
        if isinstance(expr, (ir.Name, ir.Attribute)):
            symbol = self.resolver.resolve(expr, module)
            if isinstance(symbol, ValueSym):
                expr, module = symbol.expr, symbol.module
        if isinstance(expr, ir.Scoped):
            return self.literal_sequence(expr.value, expr.module)
        if isinstance(expr, (ir.Sequence, ir.Comprehension)):
            return expr, module
        return None, module

    def task_signature(self, task, call: ir.Call, method: str) -> SignatureNode:
        method_span = call.func.attr_span if isinstance(call.func, ir.Attribute) else None
        if method in ("s", "si"):
            args, kwargs = _call_arguments(call)
            return SignatureNode(task, call.span, args or (), kwargs or (),
                                 args_known=args is not None and kwargs is not None,
                                 immutable=method == "si", via=method, method_span=method_span)
        return self._signature_from(task, call, call.positional, via="signature")

    def by_name(self, call: ir.Call, module: str) -> Node:
        """``signature("proj.tasks.add", args=(1,), kwargs={}, immutable=True)``."""
        positional = call.positional
        name = literal(positional[0], None) if positional else literal(call.keyword("task"), None)
        if not isinstance(name, str) or call.has_splat:
            return UnknownNode(call.span)
        task = self.tasks.by_name(name)
        if task is None:
            return UnknownNode(call.span)
        return self._signature_from(task, call, positional[1:], via="by-name")

    def _signature_from(self, task, call: ir.Call, positional, via: str) -> Node:
        if call.has_splat:
            return UnknownNode(call.span)
        args_expr = positional[0] if positional else call.keyword("args")
        kwargs_expr = positional[1] if len(positional) > 1 else call.keyword("kwargs")
        args = _literal_args(args_expr)
        kwargs = _literal_kwargs(kwargs_expr)
        immutable = literal(call.keyword("immutable"), False)
        if not isinstance(immutable, bool):
            return UnknownNode(call.span)
        options = tuple((a.keyword, a.value) for a in call.args
                        if a.keyword and a.keyword not in ("args", "kwargs", "immutable"))
        return SignatureNode(task, call.span, args or (), kwargs or (),
                             args_known=args is not None and kwargs is not None,
                             immutable=immutable, via=via, options=options)

    def items(self, call: ir.Call, module: str) -> Optional[List[Node]]:
        """The elements of ``chain(a, b)`` / ``chain([a, b])``; None when not all known."""
        members, _, _ = self.elements(call, module)
        return members

    def elements(self, call: ir.Call, module: str) -> "Elements":
        """The elements of ``group(a, b)`` / ``group([a, b])`` / ``group(t.s(x) for x in xs)``:
        (the members, None when their list is not known; the shapes of the members when
        not known, and whether every member has one of them)."""
        if any(a.star == "**" for a in call.args):
            return None, (), False
        arguments = [a for a in call.args if not a.keyword]
        if len(arguments) == 1 and not arguments[0].star:
            value = arguments[0].value
            if isinstance(value, (ir.Sequence, ir.Comprehension)):
                return self.sequence_elements(value, module)
            if not self._is_canvas_like(value, module):
                return None, (), False  # a variable holding a list we cannot see
        items: List[ir.Expr] = [ir.Starred(a.value, span=a.value.span) if a.star else a.value
                                for a in arguments]
        return self.sequence_elements(ir.Sequence("tuple", tuple(items)), module)

    def sequence_elements(self, expr: ir.Expr, module: str) -> "Elements":
        """``[a, b]``: known members; a comprehension (``[t.s(x) for x in xs]``) or a list
        with starred comprehensions (``[a, *(t.s(x) for x in xs)]``): members of these
        shapes, their count unknown; a starred name (``*sigs``): shapes of the rest only."""
        if isinstance(expr, ir.Comprehension):
            if expr.kind == "dict":
                return None, (), False
            return None, (self.element(expr.element, module),), True
        if not isinstance(expr, ir.Sequence):
            return None, (), False
        if not expr.has_splat:
            return [self.element(item, module) for item in expr.items], (), False
        shapes: List[Node] = []
        every = True
        for item in expr.items:
            if not isinstance(item, ir.Starred):
                shapes.append(self.element(item, module))
                continue
            _, inner, inner_every = self.sequence_elements(item.value, module)
            shapes.extend(inner)
            every = every and inner_every
        return None, tuple(shapes), every

    def _is_canvas_like(self, expr: ir.Expr, module: str) -> bool:
        node = self.build(expr, module)
        return node is not None and not isinstance(node, UnknownNode) or \
            isinstance(expr, (ir.Call, ir.BinOp))

    def element(self, expr: ir.Expr, module: str) -> Node:
        node = self.build(expr, module)
        if node is not None:
            return node
        if isinstance(expr, ir.Call) and isinstance(expr.func, ir.Attribute) \
                and expr.func.attr in APPLY_METHODS:
            symbol = self.resolver.resolve(expr.func.value, module)
            if isinstance(symbol, TaskSym):
                return CalledNode(symbol.task, expr.span, expr.func.attr, expr)
        return UnknownNode(expr.span)

    def chain(self, call: ir.Call, module: str) -> Node:
        steps = self.chain_steps(call, module)
        if steps is None:
            return UnknownNode(call.span)
        node: Optional[Node] = None
        # ``chain(X, Y, Z)`` folds its elements as ``_chain.__or__`` would; when X is a group
        # the fold hands everything to ``X | Y | Z`` (canvas ``_fold_chain``), whose
        # composition ``celery_or`` follows.
        # (A one-member group is unrolled first: it does not lead the fold.)
        kind = celery_kind(steps[0]) if steps else None
        piped = kind == "group" and len(steps) >= 2
        per_member = None
        for step in steps:
            if node is not None and piped:
                kind, broken = celery_or(kind, celery_kind(step))
                if broken and per_member is None:
                    per_member = len(node.steps) if isinstance(node, ChainNode) else 1
                if kind not in BROKEN:
                    per_member = None  # repaired by what followed, or never broken
            node = step if node is None else combine(node, step, call.span, in_chain=True)
        if node is None:
            return ChainNode((), call.span)
        if not isinstance(node, ChainNode):
            node = ChainNode((node,), call.span)
        return ChainNode(node.steps, call.span,
                         celery_kind=kind if piped and kind != "chain" else None,
                         per_member=per_member)

    def chain_steps(self, call: ir.Call, module: str) -> Optional[List[Node]]:
        """The links of ``chain(a, b)``, ``chain([a, b])``, ``chain(*steps)`` with ``steps``
        a list seen, ``chain(*[t.s(x) for x in xs])``: a comprehension gives links of its
        shape, at least two of them (a chain is built from a list to have several links:
        from the second on, each receives the previous one's result). None when not known."""
        if any(a.star == "**" for a in call.args):
            return None
        arguments = [a for a in call.args if not a.keyword]
        if len(arguments) == 1 and not arguments[0].star:
            value = arguments[0].value
            if isinstance(value, ir.Sequence):
                return self._links(value.items, module)
            if isinstance(value, ir.Comprehension):
                return self._links((ir.Starred(value, span=value.span),), module) \
                    if value.kind == "list" else None  # a generator is not a list to Celery
            if not self._is_canvas_like(value, module):
                return None  # a variable holding a list we cannot see
        return self._links([ir.Starred(a.value, span=a.value.span) if a.star else a.value
                            for a in arguments], module)

    def _links(self, items, module: str) -> Optional[List[Node]]:
        links: List[Node] = []
        for item in items:
            if not isinstance(item, ir.Starred):
                links.append(self.element(item, module))
                continue
            sequence, sequence_module = self.literal_sequence(item.value, module)
            if isinstance(sequence, ir.Sequence):
                inner = self._links(sequence.items, sequence_module)
                if inner is None:
                    return None
                links.extend(inner)
            elif isinstance(sequence, ir.Comprehension) and sequence.kind != "dict":
                shape = self.element(sequence.element, sequence_module)
                links.extend((shape, shape))
            else:
                return None  # ``*steps`` built by a loop: not known
        return links

    def group(self, call: ir.Call, module: str) -> GroupNode:
        members, shapes, every = self.elements(call, module)
        return GroupNode(tuple(members) if members is not None else None, call.span,
                         shapes=shapes, all_shapes=every)

    def chord(self, call: ir.Call, module: str):
        positional = call.positional
        header_expr = positional[0] if positional else call.keyword("header")
        body_expr = positional[1] if len(positional) > 1 else call.keyword("body")
        if header_expr is None or call.has_splat:
            return UnknownNode(call.span)
        header = self.header(header_expr, module)
        if body_expr is None:
            return _ChordHeader(header, call.span)
        return ChordNode(header, self.element(body_expr, module), call.span)

    def header(self, expr: ir.Expr, module: str) -> GroupNode:
        node = self.build(expr, module)
        if isinstance(node, GroupNode):
            return node
        members, shapes, every = self.sequence_elements(expr, module)
        return GroupNode(tuple(members) if members is not None else None, expr.span,
                         shapes=shapes, all_shapes=every)


# ---- Celery's composition rules ----


def combine(left: Node, right: Node, span, in_chain: bool = False) -> Node:
    """``left | right`` as Celery rewrites it (canvas.py ``__or__`` methods)."""
    if isinstance(left, GroupNode) and not in_chain:
        return ChordNode(left, right, span)  # group | x -> chord, even with one member
    if isinstance(left, ChordNode) and left.body is not None \
            and not isinstance(right, (GroupNode, ChainNode)):
        return ChordNode(left.header, combine(left.body, right, span), left.span)
    steps = list(left.steps) if isinstance(left, ChainNode) else [left]
    if isinstance(right, ChainNode):
        steps.extend(right.steps)
    elif isinstance(right, GroupNode) and right.members is not None and len(right.members) == 1:
        steps.append(replace(right, unrolled=True))
    else:
        steps.append(right)
    if in_chain and isinstance(left, GroupNode) and left.members is not None \
            and len(left.members) == 1:
        steps[0] = replace(left, unrolled=True)
    return ChainNode(tuple(steps), span)


def celery_kind(node: Optional[Node], leading: bool = False) -> Optional[str]:
    """What Celery holds for a canvas node, as its ``|`` operators see it: "group" (two or more
    members; one when ``leading``, on the left of ``|``, where ``group.__or__`` does not unroll
    it), "chord:group" (a chord whose body is such a group), "chord", "chain", "sig"; None when
    not known (a group built dynamically, an element the analyser cannot follow)."""
    if isinstance(node, SignatureNode):
        return "sig"
    if isinstance(node, GroupNode):
        if node.members is None:
            return None
        if len(node.members) >= 2 or (leading and node.members and not node.unrolled):
            return "group"
        return "sig" if node.members else None
    if isinstance(node, ChordNode):
        if node.body is None:
            return None
        body = node.body
        if isinstance(body, GroupNode) and body.members is not None and len(body.members) >= 2:
            return "chord:group"
        return "chord"
    if isinstance(node, ChainNode):
        return node.celery_kind or "chain"
    return None


def celery_or(left: Optional[str], right: Optional[str]) -> Tuple[Optional[str], bool]:
    """``left | right`` on Celery's objects (canvas ``__or__`` methods): the kind of the result,
    and whether it makes ``_chain(chord(..., body=group), ...)``, which runs what follows the
    chord once per member of that body group.

    Observed on Celery 5.7.0: ``g1 | g2 | g3`` ran g3's members once per member of g2, each
    with that member's result ("broken-group": ``_chain(chord(g1, g2), g3)``); a task after
    that (``| t``) repairs it, ``_chain.__or__`` folding ``chord(g3, t)`` into the chord's body
    (every step ran once); a fourth group keeps it broken ("broken"), as does a chain on the
    right of the chord (``_chain(chord(g1, g2), m, n)``). None: not known.
    """
    if left is None or right is None or right in ("broken", "broken-group"):
        return None, False
    if left == "group":  # group.__or__: chord(self, body=other)
        return ("chord:group" if right == "group" else "chord"), False
    if left in ("chord:group", "chord"):
        if right in ("group", "chain"):  # chord.__or__ -> Signature.__or__ -> _chain(self, ..)
            if left == "chord:group":
                return ("broken-group" if right == "group" else "broken"), True
            return "chain", False
        return "chord", False  # attached to the body
    if left == "broken-group":
        if right in ("sig", "chord", "chord:group"):
            return "chain", False  # chord(g3, right) folded into the chord's body: repaired
        if right == "group":
            return "broken", False
        return None, False
    if left == "broken":
        return "broken", False
    return "chain", False


BROKEN = ("broken", "broken-group")


def with_options(node: Node, call: ir.Call) -> Node:
    """``sig.set(immutable=True, countdown=10)``."""
    if not isinstance(node, SignatureNode):
        return node
    if call.has_splat:
        return UnknownNode(call.span)
    immutable = node.immutable
    value = call.keyword("immutable")
    if value is not None:
        immutable = literal(value, None)
        if not isinstance(immutable, bool):
            return UnknownNode(call.span)
    options = node.options + tuple((a.keyword, a.value) for a in call.args if a.keyword)
    return replace(node, immutable=immutable, options=options)


# ---- argument lists ----


def _bind_parameters(function, call: ir.Call, module: str, defining: str):
    """Parameter name -> the argument a call gives it (kept in its module when the function
    is another module's), for a call with no splat to a function without ``*args``/``**kw``
    it would not bind to; None when the call does not bind."""
    params = function.params.items
    slots = [p for p in params if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    positional = call.positional
    if len(positional) > len(slots) or any(p.kind in (VAR_POSITIONAL, VAR_KEYWORD)
                                           for p in params):
        return None
    bound = {}
    for param, value in zip(slots, positional):
        bound[param.name] = value
    names = {p.name for p in params if p.kind != POSITIONAL_ONLY}
    for arg in call.args:
        if arg.keyword:
            if arg.keyword not in names or arg.keyword in bound:
                return None
            bound[arg.keyword] = arg.value
    if module != defining:
        bound = {name: value if _literal_value(value) else
                 ir.Scoped(module, value, span=value.span, text=value.text)
                 for name, value in bound.items()}
    return bound


def _literal_value(expr: ir.Expr) -> bool:
    return literal(expr, _NOT_LITERAL) is not _NOT_LITERAL


_NOT_LITERAL = object()


def _value(expr: ir.Expr) -> Value:
    return Value(expr.text or "...", expr)


def _call_arguments(call: ir.Call) -> Tuple[Optional[tuple], Optional[tuple]]:
    """Positional and keyword arguments of a call; (None, None) after a splat."""
    if call.has_splat:
        return None, None
    args = tuple(_value(a.value) for a in call.args if not a.keyword)
    kwargs = tuple((a.keyword, _value(a.value)) for a in call.args if a.keyword)
    return args, kwargs


def _literal_args(expr: Optional[ir.Expr]) -> Optional[tuple]:
    if expr is None or (isinstance(expr, ir.Const) and expr.value is None):
        return ()
    if isinstance(expr, ir.Sequence) and expr.kind in ("tuple", "list") and not expr.has_splat:
        return tuple(_value(item) for item in expr.items)
    return None


def _literal_kwargs(expr: Optional[ir.Expr]) -> Optional[tuple]:
    if expr is None or (isinstance(expr, ir.Const) and expr.value is None):
        return ()
    if isinstance(expr, ir.Dict) and all(isinstance(k, ir.Const) and isinstance(k.value, str)
                                         for k in expr.keys):
        return tuple((k.value, _value(v)) for k, v in zip(expr.keys, expr.values))
    if isinstance(expr, ir.Call) and isinstance(expr.func, ir.Name) and expr.func.id == "dict" \
            and not expr.positional and not expr.has_splat:
        return tuple((a.keyword, _value(a.value)) for a in expr.args)
    return None
