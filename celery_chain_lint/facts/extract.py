"""One pass over a module's libcst tree, producing its ``ModuleFacts``.

The extractor follows Python's scoping closely enough for the rules and no further:
- module-level names become bindings, resolved later across modules by the project index;
- inside a function, a name assigned by a straight-line statement is replaced by the assigned
  expression (so ``sig = add.s(1)`` then ``sig.delay()`` is seen as ``add.s(1).delay()``); a name
  assigned in a branch or a loop, or mutated (``sigs.append``), becomes ``Opaque`` from then on;
- function-local imports keep their target, everything else local is ``Opaque``.
Only ``PositionProvider`` metadata is computed: scope and name resolution are ours, and cheaper.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Dict, Iterable, List, Optional, Sequence as Seq, Set, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.roots import looks_like_canvas
from celery_chain_lint.facts.model import (
    KEYWORD_ONLY,
    POSITIONAL_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    CallSite,
    ClassFacts,
    DefBinding,
    FromImportBinding,
    FunctionFacts,
    ImportBinding,
    ModuleFacts,
    NamesCall,
    Param,
    Params,
    Root,
    Store,
    Stores,
    UnknownBinding,
    ValueBinding,
    resolve_relative,
)

# Expressions deeper than this become Opaque: deep trees must not exhaust the stack, and facts
# must pickle (worker processes, the cache) within the default recursion limit, which a nested
# call costs about six levels of.
MAX_DEPTH = 80
# A local variable's value is substituted wherever the name is used: values deeper or larger than
# this become Opaque, or ``x = x | x`` repeated would double the tree at every line.
MAX_LOCAL_DEPTH = 24
MAX_LOCAL_SIZE = 400
# Distinct values a local may have after an ``if`` (``ir.Alternatives``), else unknown.
MAX_ALTERNATIVES = 4
TEXT_LIMIT = 60

# Calls on a local signature that do not change its arguments.
NON_MUTATING_METHODS = frozenset(
    {"delay", "apply_async", "apply", "link", "link_error", "on_error", "freeze", "get", "join",
     "wait", "ready", "successful", "failed", "forget", "revoke", "then", "id",
     # ``resp.raise_for_status()`` between ``resp = requests.get(...)`` and ``return resp.content``
     "raise_for_status",
     # An app configured in the function that makes it (Flask's ``celery_init_app``:
     # ``celery_app.config_from_object(...)``, ``celery_app.set_default()``, then ``return
     # celery_app``) is still that app; the app index reads these calls for its settings.
     "config_from_object", "set_default", "set_current", "autodiscover_tasks"}
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

OPAQUE = ir.Opaque(kind="reassigned")
LOCAL = ir.Opaque(kind="local")  # marker: a local name with no known value
# Marker: a comprehension's variable (``u`` of ``fetch.s(u) for u in urls``), one value per
# member of what the comprehension builds, each unknown.
COMPREHENSION_VARIABLE = ir.Opaque(kind="comprehension variable")


class _Scope:
    """Name lookup for one function (or the module, or a class body)."""

    def __init__(self, kind: str, qualname: str, parent: Optional["_Scope"] = None,
                 local_names: Iterable[str] = ()):
        self.kind = kind
        self.qualname = qualname
        self.parent = parent
        self.env: Dict[str, ir.Expr] = {}
        self.imports: Dict[str, ir.Imported] = {}
        self.local_names: Set[str] = set(local_names)
        self.function: Optional[FunctionFacts] = None
        self.with_items: Tuple[ir.Expr, ...] = ()
        self.handlers: Tuple[Tuple[Tuple[ir.Expr, ...], bool], ...] = ()
        self.notes: Optional[_StoreNotes] = None  # a module-level function's (``Stores``)

    def function_scope(self) -> Optional["_Scope"]:
        scope = self
        while scope is not None and scope.kind != "function":
            scope = scope.parent
        return scope


# A value as ``Stores`` reads it: ("name", name), ("call", the callee as a dotted name, or None,
# the call), ("dotted", the dotted name), or None for anything else.
Written = Optional[Tuple]


class _StoreNotes:
    """What a module-level function's own body stores and passes, gathered as the extractor
    meets it (``FunctionFacts.stores``)."""

    def __init__(self) -> None:
        self.returns: List[Optional[str]] = []
        self.assigned: Dict[str, List[Written]] = {}  # ``name = value`` statements
        self.stores: List[Tuple[str, Tuple[str, str], Written]] = []
        self.passes: List[Tuple[str, int, str]] = []

    def assignment(self, node: cst.Assign, value_read: ir.Expr) -> None:
        """``value_read``: the value as the extractor read it (kept for a call: the index
        follows ``Celery(...)`` made in the function, ``index/flask_apps.py``)."""
        value = _written(node.value, value_read)
        names = set()
        for target in node.targets:
            target = target.target
            if isinstance(target, cst.Name):
                names.add(target.value)
            else:
                stored = _store_target(target)
                if stored is not None:
                    self.stores.append(stored + (value,))
        for name in names:
            self.assigned.setdefault(name, []).append(value)

    def call(self, node: cst.Call) -> None:
        position = 0
        for arg in node.args:
            if arg.keyword is not None or arg.star == "**":
                continue
            if not arg.star and _plain_name(arg.value):
                self.passes.append((node.func.value, position, arg.value.value))
            position += 1

    def stores_of(self, params: Params) -> Optional[Stores]:
        returned = {name for name in self.returns if name is not None}
        positional = {p.name for p in params.items if p.kind == POSITIONAL_OR_KEYWORD}
        parameters = {p.name for p in params.items
                      if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)}
        stores = []
        for owner, key, written in self.stores:
            if owner not in returned and owner not in positional:
                continue
            name = written[1][0] if written is not None and written[0] == "name" else None
            if name is not None:
                assigned = self.assigned.get(name, ())
                if len(assigned) == 1:
                    written = assigned[0]
                    if written is not None and written[0] == "name":
                        written = ("dotted", written[1])
                elif assigned or name in parameters:
                    written = None
                else:
                    written = ("dotted", (name,))
            value = None if written is None or written[1] is None \
                else (written[0] == "call", written[1])
            call = written[2] if value is not None and value[0] else None
            stores.append(Store(owner, key, name, value, call))
        passes = tuple(given for given in self.passes if given[2] in returned)
        if not stores and not passes:
            return None
        return Stores(tuple(self.returns), tuple(stores), passes)


class ModuleExtractor:
    def __init__(self, module: cst.Module, path: str, module_name: str, is_package: bool,
                 code: Optional[str] = None):
        self.tree = module
        self.positions, code = positions(module, code)
        self.lines = _LINE_BREAK.split(code)
        self.facts = ModuleFacts(path=path, module=module_name, is_package=is_package)
        self.module_scope = _Scope("module", "")
        _ASSIGNED_MEMO.clear()  # keyed by node ids: valid for one tree only
        # Module-level names bound inside if/try/for/while bodies, and every binding each name
        # received: a name bound in two different ways, one of them conditional, is unknown.
        self._conditional_depth = 0
        self._conditional_names: Set[str] = set()
        self._history: Dict[str, List[object]] = {}
        # id(expr) -> (expr, depth, size) of local values (the expr keeps its id valid).
        self._measures: Dict[int, Tuple[ir.Expr, int, int]] = {}
        # The lists each enclosing loop appends to (``growing_lists``), innermost last.
        self._growing: List[Dict[str, list]] = []

    def extract(self) -> ModuleFacts:
        self.block(self.tree.body, self.module_scope)
        for name in self._conditional_names:
            distinct = []
            for binding in self._history.get(name, ()):
                if binding not in distinct:
                    distinct.append(binding)
            if len(distinct) > 1:
                self.facts.bindings[name] = UnknownBinding()
        return self.facts

    def conditional_block(self, statements: Seq[cst.CSTNode], scope: _Scope) -> None:
        """A block that may or may not run (an if branch, a loop body, a try clause)."""
        self._conditional_depth += 1
        try:
            self.block(statements, scope)
        finally:
            self._conditional_depth -= 1

    # ---- positions and text ----

    def span(self, node: cst.CSTNode) -> Optional[ir.Span]:
        position = self.positions.get(id(node))
        if position is None:
            return None
        line, column, end_line, end_column = position
        return ir.Span(line, column + 1, end_line, end_column + 1)

    def text(self, span: Optional[ir.Span]) -> str:
        if span is None:
            return ""
        first = self.lines[span.line - 1] if span.line - 1 < len(self.lines) else ""
        if span.line == span.end_line:
            snippet = first[span.column - 1: span.end_column - 1]
        else:
            snippet = first[span.column - 1:].rstrip() + " ..."
        if len(snippet) > TEXT_LIMIT:
            snippet = snippet[: TEXT_LIMIT - 3] + "..."
        return snippet

    # ---- statements ----

    def block(self, statements: Seq[cst.CSTNode], scope: _Scope) -> None:
        for statement in statements:
            self.statement(statement, scope)

    def body_of(self, node) -> Seq[cst.CSTNode]:
        return _suite(node.body)

    def statement(self, node: cst.CSTNode, scope: _Scope) -> None:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self.small_statement(small, scope)
        elif isinstance(node, cst.FunctionDef):
            self.function_def(node, scope)
        elif isinstance(node, cst.ClassDef):
            self.class_def(node, scope)
        elif isinstance(node, cst.If):
            tests, bodies = _if_chain(node)
            self.branches(scope, tests, bodies, exhaustive=len(bodies) > len(tests))
        elif isinstance(node, (cst.For, cst.While)):
            self.loop(node, scope)
        elif isinstance(node, (cst.Try, cst.TryStar)):
            self.try_statement(node, scope)
        elif isinstance(node, cst.With):
            self.with_statement(node, scope)
        elif isinstance(node, cst.Match):
            bodies = [self.body_of(case) for case in node.cases]
            self.branches(scope, [node.subject], bodies)
        elif isinstance(node, cst.SimpleStatementSuite):
            for small in node.body:
                self.small_statement(small, scope)

    def branches(self, scope: _Scope, tests: Seq[cst.BaseExpression],
                 bodies: Seq[Seq[cst.CSTNode]], exhaustive: bool = False) -> None:
        """An if/elif/else (``exhaustive``: one of ``bodies`` always runs) or a match. In a
        function, a name the branches assign keeps a known value when every path that goes
        on after the statement gives it one: that value, or ``Alternatives`` of them."""
        for test in tests:
            self.expr(test, scope)
        saved = dict(scope.env)
        assigned: Set[str] = set()
        ends: List[Dict[str, ir.Expr]] = []  # the locals at the end of each path going on
        for body in bodies:
            scope.env = dict(saved)
            assigned |= _assigned_names(body, scope)
            self.conditional_block(body, scope)
            if not _leaves(body):
                ends.append(scope.env)
        if not exhaustive:
            ends.append(dict(saved))  # no branch ran (``forget`` changes saved)
        scope.env = saved
        self.forget(scope, assigned)
        if scope.kind == "function" and ends:
            for name in assigned:
                merged = self.merge([env.get(name) for env in ends], name)
                if merged is not None and scope.env.get(name) is OPAQUE:
                    scope.env[name] = merged

    def merge(self, values: List[Optional[ir.Expr]], name: str) -> Optional[ir.Expr]:
        """One value for ``name`` from its value on every path, when each is known."""
        distinct: List[ir.Expr] = []
        for value in values:
            if value is None or isinstance(value, ir.Opaque):
                return None  # unbound on a path, or not known there
            if isinstance(value, ir.Alternatives):
                options = value.options
            else:
                options = (value,)
            for option in options:
                if all(option is not known for known in distinct):
                    distinct.append(option)
        if len(distinct) == 1:
            return distinct[0]
        if len(distinct) > MAX_ALTERNATIVES:
            return None
        return self.bounded(ir.Alternatives(tuple(distinct), text=name))

    def loop(self, node, scope: _Scope) -> None:
        body = self.body_of(node)
        assigned = _assigned_names(body, scope)
        if isinstance(node, cst.For):
            assigned |= _target_names(node.target)
            self.expr(node.iter, scope)
            self.note_iterated(node.iter, scope)
        else:
            self.expr(node.test, scope)
        growing = self.growing_lists(node, scope, assigned)
        self._conditional_depth += 1  # a module-level loop target is bound, to an unknown value
        self.forget(scope, assigned)
        self._conditional_depth -= 1
        self._growing.append(growing)
        try:
            self.conditional_block(body, scope)
            if node.orelse is not None:
                self.conditional_block(self.body_of(node.orelse), scope)
        finally:
            self._growing.pop()
        self.forget(scope, assigned)
        for name, (before, appended, expected) in growing.items():
            if appended is None or len(appended) != expected:
                continue  # another mutation, or an append the extractor did not see
            # The list as built: its items, then any number of each value appended.
            items = before.items + tuple(
                ir.Starred(ir.Comprehension("list", value, span=value.span, text=value.text),
                           span=value.span) for value in appended)
            scope.env[name] = self.bounded(
                ir.Sequence("list", items, span=before.span, text=before.text))

    def growing_lists(self, node, scope: _Scope, assigned: Set[str]) -> Dict[str, list]:
        """The local lists a loop only appends to (``rows = []``, then ``rows.append(x)`` in
        the loop, nothing else changing ``rows``): name -> [its value before the loop, the
        values appended (filled by ``track_method_call``), how many appends it spells]."""
        if scope.kind != "function":
            return {}
        statements = list(self.body_of(node))
        if node.orelse is not None:
            statements += list(self.body_of(node.orelse))
        bound: Set[str] = set()
        for statement in statements:
            bound |= _statement_assignments(statement)[0]
        if isinstance(node, cst.For):
            bound |= _target_names(node.target)
        found: Dict[str, list] = {}
        for name in assigned - bound:
            value = scope.env.get(name)
            if not (isinstance(value, ir.Sequence) and value.kind == "list"
                    and not value.has_splat):
                continue
            methods = _uses_of(statements, name)
            if methods is not None and methods and all(m == "append" for m in methods):
                found[name] = [value, [], len(methods)]
        return found

    def try_statement(self, node, scope: _Scope) -> None:
        handlers = []
        for handler in node.handlers:
            types: Tuple[ir.Expr, ...] = ()
            if handler.type is not None:
                caught = self.expr(handler.type, scope)
                types = caught.items if isinstance(caught, ir.Sequence) else (caught,)
            handlers.append((types, _reraises(handler.body)))
        outer = scope.handlers
        scope.handlers = outer + (tuple(handlers),) if handlers else outer
        assigned = _assigned_names(self.body_of(node), scope)
        self.conditional_block(self.body_of(node), scope)
        scope.handlers = outer
        saved = dict(scope.env)
        self.forget(scope, assigned)
        for handler in node.handlers:
            if handler.name is not None:
                self.forget(scope, _target_names(handler.name.name))
            self.conditional_block(self.body_of(handler), scope)
        if node.orelse is not None:
            scope.env = saved
            self.conditional_block(self.body_of(node.orelse), scope)
        if node.finalbody is not None:
            self.block(self.body_of(node.finalbody), scope)
        for handler in node.handlers:
            assigned |= _assigned_names(self.body_of(handler), scope)
        self.forget(scope, assigned)

    def with_statement(self, node: cst.With, scope: _Scope) -> None:
        items = []
        for item in node.items:
            value = self.expr(item.item, scope)
            items.append(value)
            if item.asname is not None:
                self.forget(scope, _target_names(item.asname.name))
                target = item.asname.name
                if scope.kind == "function" and isinstance(target, cst.Name) \
                        and value is not None:
                    # ``with httpx.Client() as c``: ``c`` is what ``__enter__`` returns, a
                    # call on the client (rules read where it comes from: ``c.post`` is
                    # ``httpx.Client().__enter__().post``).
                    enter = ir.Attribute(value, "__enter__", span=value.span, text=value.text)
                    scope.env[target.value] = self.bounded(
                        ir.Call(enter, (), span=value.span, text=value.text))
        outer = scope.with_items
        scope.with_items = outer + tuple(items)
        self.block(self.body_of(node), scope)
        scope.with_items = outer

    def forget(self, scope: _Scope, names: Iterable[str]) -> None:
        """Names whose value is no longer statically known."""
        for name in names:
            if scope.kind == "function":
                if name in scope.env or name in scope.local_names:
                    scope.env[name] = OPAQUE
            elif scope.kind == "module" and self._conditional_depth:
                self.bind_module(name, UnknownBinding())

    # ---- small statements ----

    def small_statement(self, node: cst.CSTNode, scope: _Scope) -> None:
        if isinstance(node, cst.Expr):
            value = self.expr(node.value, scope)
            self.add_root(scope, "expr", value)
            self.track_method_call(node.value, value, scope)
        elif isinstance(node, cst.Assign):
            value = self.expr(node.value, scope)
            self.add_root(scope, "assign", value)
            if scope.notes is not None:
                scope.notes.assignment(node, value)
            for target in node.targets:
                self.assign(target.target, value, scope)
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                value = self.expr(node.value, scope)
                self.add_root(scope, "assign", value)
                self.assign(node.target, value, scope)
        elif isinstance(node, cst.AugAssign):
            value = self.expr(node.value, scope)
            self.add_root(scope, "assign", value)
            self.augmented_assign(node, value, scope)
        elif isinstance(node, cst.Return):
            value = self.expr(node.value, scope) if node.value is not None else None
            if value is not None:
                self.add_root(scope, "return", value)
            function = scope.function_scope()
            if function is not None and function.function is not None:
                function.function.returns.append((self.span(node), value))
            if scope.notes is not None:
                scope.notes.returns.append(
                    node.value.value if _plain_name(node.value) else None)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            self.import_statement(node, scope)
        elif isinstance(node, cst.Del):
            self.forget(scope, _target_names(node.target))
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            function = scope.function_scope()
            if function is not None:
                for item in node.names:
                    function.local_names.discard(item.name.value)
        elif isinstance(node, cst.Raise):
            if node.exc is not None:
                self.add_root(scope, "other", self.expr(node.exc, scope))
        elif isinstance(node, cst.Assert):
            self.expr(node.test, scope)

    def add_root(self, scope: _Scope, kind: str, value: Optional[ir.Expr]) -> None:
        if value is not None and scope.kind != "class" and looks_like_canvas(value):
            function = scope.function_scope()
            self.facts.roots.append(Root(function.qualname if function else "", kind, value))

    def assign(self, target: cst.BaseExpression, value: ir.Expr, scope: _Scope) -> None:
        if isinstance(target, cst.Name):
            self.bind(scope, target.value, value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = target.elements
            if (isinstance(value, ir.Sequence) and not value.has_splat
                    and len(value.items) == len(elements)
                    and not any(isinstance(e, cst.StarredElement) for e in elements)):
                for element, item in zip(elements, value.items):
                    self.assign(element.value, item, scope)
            else:
                self.forget(scope, _target_names(target))
        elif isinstance(target, cst.Attribute):
            if scope.kind == "module":
                self.facts.attribute_assignments.append((self.expr(target, scope), value))
            elif _writes_conf(target):
                self.conf_write_in_function(self.expr(target, scope), scope)
            base = _base_name(target)
            if base is not None and scope.kind == "function" and base in scope.env:
                self.attribute_written(scope, base, target)
        elif isinstance(target, cst.Subscript):
            setting = _conf_item(target)
            if setting is not None:  # ``app.conf["result_backend"] = url``: as app.conf.<name>
                span = self.span(target)
                written = ir.Attribute(self.expr(target.value, scope), setting, span=span,
                                       text=self.text(span))
                if scope.kind == "module":
                    self.facts.attribute_assignments.append((written, value))
                else:
                    self.conf_write_in_function(written, scope)
            self.forget_mutated(target, scope)

    def attribute_written(self, scope: _Scope, name: str, target: cst.Attribute) -> None:
        """``name.attr = v`` (or ``name.a.b = v``) in a function: ``name`` is no longer known
        as a value, but stays the object it was (``ir.Changed``)."""
        path = []
        node: cst.BaseExpression = target
        while isinstance(node, cst.Attribute):
            path.append(node.attr.value)
            node = node.value
        current = scope.env[name]
        if not isinstance(node, cst.Name) or current is None or (
                isinstance(current, ir.Opaque) and not isinstance(current, ir.Changed)):
            self.forget(scope, [name])
            return
        written = ".".join(reversed(path))
        if isinstance(current, ir.Changed):
            if current.was is None:
                return
            was, attributes = current.was, current.attributes + (written,)
        else:
            was, attributes = current, (written,)
        scope.env[name] = ir.Changed(kind=OPAQUE.kind, was=was, attributes=attributes)

    def forget_mutated(self, target: cst.BaseExpression, scope: _Scope) -> None:
        """``name[k] = v``, ``name.attr[k] = v``, ``name.attr += v``: inside a function the
        local ``name`` no longer has the value the extractor knows. At module level the name
        stays bound to the same object: a write to one of its attributes
        (``app.conf.beat_schedule["x"] = ...`` under an ``if``, as taiga's ``celery.py``) does
        not rebind it, as an unconditional one does not (``assign``); an item written into the
        object itself (``FLOWS[0] = ...``) under an ``if`` does make its value unknown."""
        base = _base_name(target)
        if base is None:
            return
        if scope.kind == "module" and not (isinstance(target, cst.Subscript)
                                           and isinstance(target.value, cst.Name)):
            return
        self.forget(scope, [base])

    def conf_write_in_function(self, written: ir.Attribute, scope: _Scope) -> None:
        if not _on_a_local(written.value.value):
            function = scope.function_scope()
            self.facts.conf_writes_in_functions.append(
                (function.qualname if function else "", written))

    def augmented_assign(self, node: cst.AugAssign, value: ir.Expr, scope: _Scope) -> None:
        target = node.target
        if not isinstance(target, cst.Name):
            self.forget_mutated(target, scope)
            return
        name = target.value
        if (scope.kind == "function" and isinstance(node.operator, cst.BitOrAssign)
                and name in scope.env and not _forgotten(scope.env[name])):
            left = scope.env[name]
            scope.env[name] = self.bounded(
                ir.BinOp("|", left, value, span=left.span, text=left.text))
        else:
            self.forget(scope, [name])

    def track_method_call(self, node: cst.BaseExpression, value: ir.Expr, scope: _Scope) -> None:
        """A statement ``name.method(...)`` may change what a local name holds."""
        if scope.kind != "function" or not isinstance(node, cst.Call):
            return
        func = node.func
        if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
            return
        name, method = func.value.value, func.attr.value
        if name not in scope.env:
            return
        growing = next((lists[name] for lists in reversed(self._growing) if name in lists), None)
        if growing is not None and _forgotten(scope.env[name]):  # appended to in a loop
            if method == "append" and isinstance(value, ir.Call) and len(value.args) == 1 \
                    and not value.args[0].keyword and not value.args[0].star \
                    and growing[1] is not None:
                growing[1].append(value.args[0].value)
            else:
                growing[1] = None
            return
        current = scope.env[name]
        if method == "append" and isinstance(current, ir.Sequence) and current.kind == "list" \
                and isinstance(value, ir.Call) and len(value.args) == 1 \
                and not value.args[0].keyword and not value.args[0].star:
            # ``rows = []; rows.append(a)``: the list with one more item.
            scope.env[name] = self.bounded(ir.Sequence(
                "list", current.items + (value.args[0].value,), span=current.span,
                text=current.text))
        elif method == "set":
            scope.env[name] = self.bounded(value)  # ``sig.set(immutable=True)`` changes sig
        elif method not in NON_MUTATING_METHODS:
            scope.env[name] = OPAQUE

    def bind(self, scope: _Scope, name: str, value: ir.Expr) -> None:
        if scope.kind == "function":
            scope.env[name] = self.bounded(value)
        elif scope.kind == "module":
            self.bind_module(name, ValueBinding(value))

    def bounded(self, value: ir.Expr) -> ir.Expr:
        """``value``, or Opaque when it is too deep or too large to be substituted."""
        if value is None or value is OPAQUE:
            return value
        depth, size = self._measure(value)
        if depth > MAX_LOCAL_DEPTH or size > MAX_LOCAL_SIZE:
            return ir.Opaque(kind="too complex", span=value.span, text=value.text)
        return value

    def _measure(self, root: ir.Expr) -> Tuple[int, int]:
        """(depth, size as a tree) of ``root``, iteratively, memoised across calls: values
        share the subtrees of the values they were built from."""
        measures = self._measures
        stack: List[Tuple[ir.Expr, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in measures:
                continue
            children = list(node.children())
            if not expanded:
                stack.append((node, True))
                stack.extend((child, False) for child in children if id(child) not in measures)
                continue
            depth = size = 1
            for child in children:
                _, child_depth, child_size = measures[id(child)]
                depth = max(depth, child_depth + 1)
                size = min(size + child_size, MAX_LOCAL_SIZE + 1)
            measures[id(node)] = (node, depth, size)
        _, depth, size = measures[id(root)]
        return depth, size

    def bind_module(self, name: str, binding) -> None:
        self._history.setdefault(name, []).append(binding)
        if self._conditional_depth:
            self._conditional_names.add(name)
        self.facts.bindings[name] = binding

    def import_statement(self, node, scope: _Scope) -> None:
        for local, binding in _import_bindings(node, self.facts.module, self.facts.is_package):
            if local == "*":
                if scope.kind == "module":
                    self.facts.star_imports.append(binding.module)
                continue
            if scope.kind == "module":
                self.bind_module(local, binding)
            elif scope.kind == "function":
                module = binding.module
                name = binding.name if isinstance(binding, FromImportBinding) else None
                scope.env.pop(local, None)
                scope.imports[local] = ir.Imported(module, name, span=self.span(node))

    # ---- definitions ----

    def function_def(self, node: cst.FunctionDef, scope: _Scope) -> None:
        qualname = _qualname(scope, node.name.value)
        facts = FunctionFacts(
            qualname=qualname,
            name=node.name.value,
            span=self.span(node),
            name_span=self.span(node.name),
            params=_params(node.params),
            decorators=tuple(self.expr(d.decorator, scope) for d in node.decorators),
            is_async=node.asynchronous is not None,
            is_method=scope.kind == "class",
        )
        self.facts.functions[qualname] = facts
        if scope.kind == "module":
            self.bind_module(node.name.value, DefBinding("function", qualname))
        elif scope.kind == "function":
            scope.env[node.name.value] = ir.Opaque(kind="local function", text=node.name.value)
        inner = _Scope("function", qualname, parent=scope,
                       local_names=_local_names(node))
        inner.function = facts
        if scope.kind == "module":
            inner.notes = _StoreNotes()
        self.block(self.body_of(node), inner)
        facts.passes_through = self.passes_through(node, facts)
        if inner.notes is not None:
            facts.stores = inner.notes.stores_of(facts.params)

    def passes_through(self, node: cst.FunctionDef, facts: FunctionFacts) -> Optional[ir.Expr]:
        """``FunctionFacts.passes_through``: ``def deco(f)``, whose one return is a nested
        ``@wraps(f) def wrapper(*args, **kwargs)`` calling ``f(*args, **kwargs)``, and
        neither rebinding nor changing ``args``/``kwargs``."""
        params = facts.params.items
        if len(params) != 1 or params[0].kind not in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD):
            return None
        wrapped = params[0].name
        values = [value for _, value in facts.returns if value is not None]
        if len(values) != 1 or not (isinstance(values[0], ir.Opaque)
                                    and values[0].kind == "local function"):
            return None
        name = values[0].text
        inner = self.facts.functions.get(f"{facts.qualname}.<locals>.{name}")
        definition = next((statement for statement in self.body_of(node)
                           if isinstance(statement, cst.FunctionDef)
                           and statement.name.value == name), None)
        if inner is None or definition is None or len(inner.decorators) != 1:
            return None
        kinds = [p.kind for p in inner.params.items]
        if kinds != [VAR_POSITIONAL, VAR_KEYWORD]:
            return None
        args, kwargs = (p.name for p in inner.params.items)
        wraps = inner.decorators[0]
        if not (isinstance(wraps, ir.Call) and len(wraps.args) == 1 and _is_local(
                wraps.args[0].value, wrapped) and not wraps.args[0].keyword
                and not wraps.args[0].star):
            return None
        if _assigned_names(self.body_of(definition)) & {args, kwargs, wrapped}:
            return None
        forwarded = False
        for site in inner.calls:
            call = site.call
            if isinstance(call, ir.Call) and isinstance(call.func, ir.Attribute) and any(
                    _is_local(call.func.value, local) for local in (args, kwargs)):
                return None  # ``kwargs.pop("x")``: not passed through as given
            if isinstance(call, ir.Call) and _is_local(call.func, wrapped) \
                    and [(a.star, a.keyword) for a in call.args] == [("*", None), ("**", None)] \
                    and _is_local(call.args[0].value, args) \
                    and _is_local(call.args[1].value, kwargs):
                forwarded = True
        return wraps.func if forwarded else None

    def class_def(self, node: cst.ClassDef, scope: _Scope) -> None:
        qualname = _qualname(scope, node.name.value)
        facts = ClassFacts(
            qualname=qualname,
            name=node.name.value,
            span=self.span(node),
            bases=tuple(self.expr(a.value, scope) for a in node.bases if not a.star),
            keywords={a.keyword.value: self.expr(a.value, scope) for a in node.keywords
                      if a.keyword is not None},
        )
        self.facts.classes[qualname] = facts
        if scope.kind == "module":
            self.bind_module(node.name.value, DefBinding("class", qualname))
        elif scope.kind == "function":
            scope.env[node.name.value] = ir.Opaque(kind="local class")
        body = _Scope("class", qualname, parent=scope)
        for statement in self.body_of(node):
            self.class_statement(statement, body, facts)

    def class_statement(self, node: cst.CSTNode, scope: _Scope, facts: ClassFacts) -> None:
        if isinstance(node, cst.FunctionDef):
            facts.methods[node.name.value] = _qualname(scope, node.name.value)
            self.function_def(node, scope)
        elif isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1 \
                        and isinstance(small.targets[0].target, cst.Name):
                    facts.attributes[small.targets[0].target.value] = self.expr(small.value, scope)
                elif isinstance(small, cst.AnnAssign) and small.value is not None \
                        and isinstance(small.target, cst.Name):
                    facts.attributes[small.target.value] = self.expr(small.value, scope)
        else:
            self.statement(node, scope)

    # ---- expressions ----

    def expr(self, node: Optional[cst.BaseExpression], scope: Optional[_Scope],
             depth: int = 0) -> Optional[ir.Expr]:
        if node is None:
            return None
        if scope is None:
            scope = self.module_scope
        span = self.span(node)
        if depth > MAX_DEPTH:
            return ir.Opaque(kind="too deep", span=span)
        convert = getattr(self, "expr_" + type(node).__name__, None)
        if convert is not None:
            return convert(node, scope, depth + 1, span)
        parts = tuple(self.expr(child, scope, depth + 1) for child in _sub_expressions(node))
        return ir.Opaque(kind=type(node).__name__, parts=parts, span=span, text=self.text(span))

    def expr_Name(self, node: cst.Name, scope: _Scope, depth: int, span) -> ir.Expr:
        name = node.value
        if name in ("None", "True", "False"):
            return ir.Const({"None": None, "True": True, "False": False}[name], span=span,
                            text=name)
        resolved = self.lookup_local(name, scope)
        if resolved is LOCAL:
            return ir.Opaque(kind="local", span=span, text=name)
        if resolved is COMPREHENSION_VARIABLE:  # its value unknown, its name for messages
            return ir.Opaque(kind=COMPREHENSION_VARIABLE.kind, span=span, text=name)
        if resolved is not None:
            return resolved
        return ir.Name(name, span=span, text=name)

    def lookup_local(self, name: str, scope: _Scope) -> Optional[ir.Expr]:
        """The local meaning of ``name``, or None when it is a module-level (global) name."""
        current: Optional[_Scope] = scope
        innermost = True
        while current is not None and current.kind != "module":
            if current.kind in ("function", "comprehension"):
                if innermost and name in current.env:
                    return current.env[name]
                if name in current.imports:
                    return current.imports[name]
                if name in current.local_names or name in current.env:
                    return LOCAL
                if current.kind == "function":
                    innermost = False  # enclosing functions' values are read at call time
            current = current.parent
        return None

    def expr_Attribute(self, node: cst.Attribute, scope, depth, span) -> ir.Expr:
        attr_span = self.span(node.attr)
        return ir.Attribute(self.expr(node.value, scope, depth), node.attr.value,
                            attr_span=attr_span, span=span, text=self.text(span))

    def expr_Call(self, node: cst.Call, scope, depth, span) -> ir.Expr:
        args = tuple(
            ir.Arg(self.expr(arg.value, scope, depth),
                   keyword=arg.keyword.value if arg.keyword is not None else None,
                   star=arg.star)
            for arg in node.args
        )
        call = ir.Call(self.expr(node.func, scope, depth), args, span=span, text=self.text(span))
        function = scope.function_scope()
        if function is not None and function.function is not None:
            function.function.calls.append(
                CallSite(call, with_items=scope.with_items, handlers=scope.handlers))
            if function.notes is not None and isinstance(node.func, cst.Name):
                inner = scope
                while inner.kind == "comprehension":
                    inner = inner.parent
                if inner is function:  # not in a class body the function defines
                    function.notes.call(node)
        elif function is None:
            outer = scope
            while outer.kind == "comprehension":
                outer = outer.parent
            if outer.kind == "module":  # a class body's statements may be elided: not listed
                named = _names_call(call)
                if named is not None:
                    self.facts.calls.append(named)
        return call

    def expr_BinaryOperation(self, node: cst.BinaryOperation, scope, depth, span) -> ir.Expr:
        left = self.expr(node.left, scope, depth)
        right = self.expr(node.right, scope, depth)
        if isinstance(node.operator, cst.BitOr):
            return ir.BinOp("|", left, right, span=span, text=self.text(span))
        return ir.Opaque(kind="binary operation", parts=(left, right), span=span,
                         text=self.text(span))

    def _sequence(self, kind: str, node, scope, depth, span) -> ir.Expr:
        items = []
        for element in node.elements:
            value = self.expr(element.value, scope, depth)
            if isinstance(element, cst.StarredElement):
                value = ir.Starred(value, span=value.span)
            items.append(value)
        return ir.Sequence(kind, tuple(items), span=span, text=self.text(span))

    def expr_List(self, node, scope, depth, span):
        return self._sequence("list", node, scope, depth, span)

    def expr_Tuple(self, node, scope, depth, span):
        return self._sequence("tuple", node, scope, depth, span)

    def expr_Set(self, node, scope, depth, span):
        return self._sequence("set", node, scope, depth, span)

    def expr_Dict(self, node: cst.Dict, scope, depth, span) -> ir.Expr:
        keys, values = [], []
        for element in node.elements:
            if isinstance(element, cst.StarredDictElement):
                keys.append(None)
            else:
                keys.append(self.expr(element.key, scope, depth))
            values.append(self.expr(element.value, scope, depth))
        return ir.Dict(tuple(keys), tuple(values), span=span, text=self.text(span))

    def _constant(self, node, span) -> ir.Expr:
        value = _plain_literal(node)
        if value is _NOT_PLAIN:
            try:
                value = node.evaluated_value  # ``ast.literal_eval``: a compile per literal
            except Exception:  # an odd literal (e.g. an invalid escape) is still a literal
                value = None
        return ir.Const(value, span=span, text=self.text(span))

    def expr_SimpleString(self, node, scope, depth, span):
        return self._constant(node, span)

    def expr_ConcatenatedString(self, node, scope, depth, span):
        return self._constant(node, span)

    def expr_Integer(self, node, scope, depth, span):
        return self._constant(node, span)

    def expr_Float(self, node, scope, depth, span):
        return self._constant(node, span)

    def note_iterated(self, node: cst.BaseExpression, scope: _Scope) -> None:
        function = scope.function_scope()
        if isinstance(node, cst.Name) and function is not None and function.function is not None:
            function.function.iterated.append(node.value)

    def _comprehension(self, kind: str, node, scope, depth, span) -> ir.Expr:
        inner = _Scope("comprehension", scope.qualname, parent=scope)
        inner.function = None
        clause = node.for_in
        while clause is not None:
            self.expr(clause.iter, inner, depth)
            self.note_iterated(clause.iter, scope)
            for name in _target_names(clause.target):
                inner.env[name] = COMPREHENSION_VARIABLE
            clause = clause.inner_for_in
        element = node.value if isinstance(node, cst.DictComp) else node.elt
        inner.with_items, inner.handlers = scope.with_items, scope.handlers
        value = self.expr(element, inner, depth)
        return ir.Comprehension(kind, value, span=span, text=self.text(span))

    def expr_GeneratorExp(self, node, scope, depth, span):
        return self._comprehension("generator", node, scope, depth, span)

    def expr_ListComp(self, node, scope, depth, span):
        return self._comprehension("list", node, scope, depth, span)

    def expr_SetComp(self, node, scope, depth, span):
        return self._comprehension("set", node, scope, depth, span)

    def expr_DictComp(self, node, scope, depth, span):
        return self._comprehension("dict", node, scope, depth, span)

    def expr_Lambda(self, node, scope, depth, span):
        """Opaque as a value; its body, a function's, is a root of the enclosing function when
        it builds or sends a canvas (Django's ``transaction.on_commit(lambda: t.delay(x))``).
        Its calls are not the enclosing function's (``FunctionFacts.calls``): they run later,
        outside the ``with`` and ``try`` blocks around the lambda. As in a nested function,
        the enclosing function's locals are read when it runs: not substituted."""
        enclosing = scope.function_scope()
        inner = _Scope("function", enclosing.qualname if enclosing is not None else "",
                       parent=scope, local_names=_lambda_parameters(node.params))
        self.add_root(inner, "lambda", self.expr(node.body, inner, depth))
        return ir.Opaque(kind="lambda", span=span, text=self.text(span))


# ---- helpers on libcst nodes ----


def _lambda_parameters(parameters: cst.Parameters) -> Set[str]:
    return {item.name for item in _params(parameters).items}


def _forgotten(value: Optional[ir.Expr]) -> bool:
    """A local whose value is no longer known: reassigned, or its attributes written."""
    return value is OPAQUE or isinstance(value, ir.Changed)


_NOT_PLAIN = object()


def _plain_literal(node) -> object:
    """The value of a string without prefix or backslash, or of a decimal integer, read
    directly; ``_NOT_PLAIN`` for the others (``evaluated_value`` reads them)."""
    raw = node.value if isinstance(node, (cst.SimpleString, cst.Integer)) else ""
    if isinstance(node, cst.Integer):
        plain = raw.isascii() and raw.isdigit() and (raw[0] != "0" or raw == "0")
        return int(raw) if plain else _NOT_PLAIN
    if not raw or raw[0] not in "'\"" or "\\" in raw or "\r" in raw:
        return _NOT_PLAIN
    quotes = 3 if raw[:3] in ('"""', "'''") and len(raw) >= 6 else 1
    return raw[quotes:-quotes]


def _sub_expressions(node: cst.CSTNode) -> List[cst.BaseExpression]:
    """The nearest expressions below ``node``, looking through wrappers like Arg or Index."""
    found, stack = [], list(reversed(node.children))
    while stack:
        child = stack.pop()
        if isinstance(child, cst.BaseExpression):
            found.append(child)
        elif not isinstance(child, (cst.Lambda,)):
            stack.extend(reversed(child.children))
    return found


def _suite(body: cst.BaseSuite) -> Seq[cst.CSTNode]:
    """The statements of an indented block, or a one-line suite as a single statement."""
    if isinstance(body, cst.SimpleStatementSuite):
        return (body,)
    return body.body


def _qualname(scope: _Scope, name: str) -> str:
    if scope.kind == "module":
        return name
    if scope.kind == "class":
        return f"{scope.qualname}.{name}"
    return f"{scope.qualname}.<locals>.{name}"


def _params(parameters: cst.Parameters) -> Params:
    items = [Param(p.name.value, POSITIONAL_ONLY, p.default is not None)
             for p in parameters.posonly_params]
    items += [Param(p.name.value, POSITIONAL_OR_KEYWORD, p.default is not None)
              for p in parameters.params]
    if isinstance(parameters.star_arg, cst.Param):
        items.append(Param(parameters.star_arg.name.value, VAR_POSITIONAL))
    items += [Param(p.name.value, KEYWORD_ONLY, p.default is not None)
              for p in parameters.kwonly_params]
    if parameters.star_kwarg is not None:
        items.append(Param(parameters.star_kwarg.name.value, VAR_KEYWORD))
    return Params(tuple(items))


def _writes_conf(target: cst.BaseExpression) -> bool:
    """``<owner>.conf.<name> = ...`` or ``<owner>.conf[...] = ...``: a setting of an app
    (``roots.body_reading`` reads the bodies that hold one now, unless the owner is reached
    from a parameter)."""
    return isinstance(target.value, cst.Attribute) and target.value.attr.value == "conf"


def _conf_item(target: cst.Subscript) -> Optional[str]:
    """The setting ``<owner>.conf["name"] = ...`` writes, when ``name`` is a plain string."""
    if not (_writes_conf(target) and len(target.slice) == 1
            and isinstance(target.slice[0].slice, cst.Index)):
        return None
    key = target.slice[0].slice.value
    if isinstance(key, cst.SimpleString):
        try:
            value = key.evaluated_value
        except Exception:  # an escape libcst cannot evaluate: not a setting we know
            return None
        return value if isinstance(value, str) else None
    return None


def _names_call(call: ir.Call) -> Optional[NamesCall]:
    """``call`` as ``ModuleFacts.calls`` keeps it, if it is one kept."""
    func = ir.dotted_name(call.func)
    if func is None or call.has_splat:
        return None
    positional: List[Optional[Tuple[str, ...]]] = []
    keywords: List[Tuple[str, Optional[Tuple[str, ...]]]] = []
    passes = False
    for arg in call.args:
        dotted = ir.dotted_name(arg.value)
        parts = tuple(dotted.split(".")) if dotted is not None else None
        passes = passes or parts is not None
        if arg.keyword is None:
            positional.append(parts)
        else:
            keywords.append((arg.keyword, parts))
    if not passes:
        return None
    return NamesCall(tuple(func.split(".")), tuple(positional), tuple(keywords))


def _plain_name(node: Optional[cst.BaseExpression]) -> bool:
    """A name, not the constants libcst spells as names."""
    return isinstance(node, cst.Name) and node.value not in ("None", "True", "False")


def _dotted_parts(node: cst.BaseExpression) -> Optional[Tuple[str, ...]]:
    """``a.b.c`` as ("a", "b", "c"); None for anything else."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not _plain_name(node):
        return None
    parts.append(node.value)
    return tuple(reversed(parts))


def _written(node: cst.BaseExpression, value_read: ir.Expr) -> Written:
    """A stored or assigned value as ``Stores`` reads it."""
    if _plain_name(node):
        return "name", (node.value,)
    if isinstance(node, cst.Call):
        return "call", _dotted_parts(node.func), \
            value_read if isinstance(value_read, ir.Call) else None
    dotted = _dotted_parts(node)
    return ("dotted", dotted) if dotted is not None else None


def _store_target(target: cst.BaseExpression) -> Optional[Tuple[str, Tuple[str, str]]]:
    """(owner, key) of ``owner.attribute`` or ``owner.extensions["key"]``, ``owner`` a name."""
    if isinstance(target, cst.Attribute) and _plain_name(target.value):
        return target.value.value, ("attribute", target.attr.value)
    if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Attribute) \
            and target.value.attr.value == "extensions" and _plain_name(target.value.value) \
            and len(target.slice) == 1 and isinstance(target.slice[0].slice, cst.Index) \
            and isinstance(target.slice[0].slice.value, (cst.SimpleString,
                                                         cst.ConcatenatedString)):
        try:
            key = target.slice[0].slice.value.evaluated_value
        except Exception:  # an escape libcst cannot evaluate
            return None
        if isinstance(key, str):
            return target.value.value.value, ("extension", key)
    return None


def _on_a_local(owner: ir.Expr) -> bool:
    """Whether ``owner`` is reached from a local the extractor cannot follow (``self.app``):
    never an app the index knows."""
    while isinstance(owner, (ir.Attribute, ir.Call)):
        owner = owner.func if isinstance(owner, ir.Call) else owner.value
    return isinstance(owner, ir.Opaque) and owner.kind in ("local", OPAQUE.kind)


def _base_name(node: cst.BaseExpression) -> Optional[str]:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _target_names(target: cst.CSTNode) -> Set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        names: Set[str] = set()
        for element in target.elements:
            names |= _target_names(element.value)
        return names
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    if isinstance(target, cst.Del):
        return _target_names(target.target)
    return set()


# Per libcst node class: the fields that may hold child nodes (trivia fields left out).
_CHILD_FIELDS: Dict[type, Tuple[str, ...]] = {}
_TRIVIA_FIELDS = frozenset({"leading_lines", "lines_after_decorators", "lpar", "rpar", "comma",
                            "semicolon", "header", "footer", "trailing_whitespace", "newline"})
# Nested scopes whose bindings are not the block's own.
_OWN_SCOPE = (cst.Lambda, cst.GeneratorExp, cst.ListComp, cst.SetComp, cst.DictComp)


def _child_nodes(node: cst.CSTNode) -> List[cst.CSTNode]:
    """The child nodes of ``node`` that are not whitespace: read from its fields directly,
    because libcst's ``children`` and visitors rebuild every node they pass (slow)."""
    names = _CHILD_FIELDS.get(type(node))
    if names is None:
        names = _CHILD_FIELDS[type(node)] = tuple(
            f.name for f in dataclasses.fields(node)
            if f.name not in _TRIVIA_FIELDS and not f.name.startswith("whitespace"))
    found: List[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(item for item in value if isinstance(item, cst.CSTNode))
    return found


# Per statement (by id, reset for every module): the names it binds and the names it mutates.
# Nested blocks are asked again as the extractor descends; each statement is walked once.
_ASSIGNED_MEMO: Dict[int, Tuple[frozenset, frozenset]] = {}


# What a node means to ``_statement_assignments``, by its class (isinstance against libcst's
# abstract classes is slow, and every node of a function body is asked).
_STATEMENT, _DEFINITION, _OWN, _TARGET, _AS_NAME, _IMPORT_ALIAS, _CALL, _OTHER = range(8)
_KINDS: Dict[type, int] = {}


def _kind(cls: type) -> int:
    kind = _KINDS.get(cls)
    if kind is None:
        if issubclass(cls, (cst.FunctionDef, cst.ClassDef)):
            kind = _DEFINITION
        elif issubclass(cls, cst.BaseStatement):
            kind = _STATEMENT
        elif issubclass(cls, _OWN_SCOPE):
            kind = _OWN
        elif issubclass(cls, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.NamedExpr)):
            kind = _TARGET
        elif issubclass(cls, cst.AsName):
            kind = _AS_NAME
        elif issubclass(cls, cst.ImportAlias):
            kind = _IMPORT_ALIAS
        elif issubclass(cls, cst.Call):
            kind = _CALL
        else:
            kind = _OTHER
        _KINDS[cls] = kind
    return kind


def _statement_assignments(statement: cst.CSTNode) -> Tuple[frozenset, frozenset]:
    """(names bound, local names mutated by ``name.method(...)``) in ``statement``, not looking
    into nested functions, classes, lambdas or comprehensions."""
    known = _ASSIGNED_MEMO.get(id(statement))
    if known is not None:
        return known
    names: Set[str] = set()
    mutated: Set[str] = set()
    if _kind(type(statement)) == _DEFINITION:
        names.add(statement.name.value)  # its decorators, bases and defaults bind nothing here
        stack: List[cst.CSTNode] = []
    else:
        stack = _child_nodes(statement)
        if isinstance(statement, cst.For):
            names |= _target_names(statement.target)
    while stack:
        node = stack.pop()
        kind = _KINDS.get(type(node))
        if kind is None:
            kind = _kind(type(node))
        if kind == _OTHER:
            stack.extend(_child_nodes(node))
            continue
        if kind == _STATEMENT or kind == _DEFINITION:
            inner_names, inner_mutated = _statement_assignments(node)
            names |= inner_names
            mutated |= inner_mutated
            continue
        if kind == _OWN:
            continue
        if kind == _TARGET:
            names |= _target_names(node.target)
        elif kind == _AS_NAME:
            names |= _target_names(node.name)
        elif kind == _IMPORT_ALIAS:
            if node.asname is None:
                names.add(_dotted(node.name).split(".")[0])
        elif kind == _CALL:
            func = node.func
            if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) \
                    and func.attr.value not in NON_MUTATING_METHODS:
                mutated.add(func.value.value)
        stack.extend(_child_nodes(node))
    result = (frozenset(names), frozenset(mutated))
    _ASSIGNED_MEMO[id(statement)] = result
    return result


def _assigned_names(statements: Seq[cst.CSTNode], scope: Optional[_Scope] = None) -> Set[str]:
    """Names a block binds; inside a function also the local names it mutates (``sigs.append``)."""
    names: Set[str] = set()
    mutated: Set[str] = set()
    for statement in statements:
        statement_names, statement_mutated = _statement_assignments(statement)
        names |= statement_names
        mutated |= statement_mutated
    if scope is not None and scope.kind == "function":
        return names | {n for n in mutated if n in scope.env}
    return names


def _local_names(node: cst.FunctionDef) -> Set[str]:
    names = {item.name for item in _params(node.params).items}
    return names | _assigned_names(_suite(node.body))


def _if_chain(node: cst.If):
    """The tests and bodies of an if/elif/else statement."""
    tests, bodies = [node.test], [_suite(node.body)]
    orelse = node.orelse
    while orelse is not None:
        if isinstance(orelse, cst.If):
            tests.append(orelse.test)
            orelse_body, orelse = orelse.body, orelse.orelse
        else:
            orelse_body, orelse = orelse.body, None
        bodies.append(_suite(orelse_body))
    return tests, bodies


def _uses_of(statements: Seq[cst.CSTNode], name: str) -> Optional[List[str]]:
    """The methods called on the local ``name`` in ``statements`` (``name.append(...)``),
    nested functions, lambdas and classes left out; None when ``name`` is changed otherwise
    (``name[i] = ...``, ``del name[i]``) or handed to a nested function."""
    methods: List[str] = []
    stack: List[cst.CSTNode] = list(statements)
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            if _mentions(node, name):
                return None  # a closure may change it
            continue
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
                and isinstance(node.func.value, cst.Name) and node.func.value.value == name:
            methods.append(node.func.attr.value)
        elif isinstance(node, (cst.AssignTarget, cst.AugAssign, cst.Del)):
            target = node.target
            if isinstance(target, (cst.Subscript, cst.Attribute)) and _base_name(target) == name:
                return None
        stack.extend(_child_nodes(node))
    return methods


def _mentions(node: cst.CSTNode, name: str) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name) and current.value == name:
            return True
        stack.extend(_child_nodes(current))
    return False


def _is_local(expr: Optional[ir.Expr], name: str) -> bool:
    """Whether ``expr`` is the local ``name`` with its incoming value (a parameter)."""
    return isinstance(expr, ir.Opaque) and expr.kind == "local" and expr.text == name


def _leaves(body: Seq[cst.CSTNode]) -> bool:
    """Whether a block always leaves before its end: it ends with ``return``, ``raise``,
    ``continue`` or ``break`` (what comes after the statement holding it does not run)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) and last.body:
        return isinstance(last.body[-1], (cst.Return, cst.Raise, cst.Continue, cst.Break))
    return False


def _reraises(body: cst.BaseSuite) -> bool:
    """Whether an ``except`` clause raises (outside functions defined inside it)."""
    stack: List[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Raise):
            return True
        if not isinstance(node, cst.FunctionDef):
            stack.extend(_child_nodes(node))
    return False


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return _dotted(node.value) + "." + node.attr.value
    return ""


def _import_bindings(node, module: str, is_package: bool):
    """(local name, binding) pairs for an import statement; "*" for a star import."""
    if isinstance(node, cst.Import):
        for alias in node.names:
            target = _dotted(alias.name)
            if alias.asname is not None:
                yield alias.asname.name.value, ImportBinding(target)
            else:
                top = target.split(".")[0]
                yield top, ImportBinding(top)
        return
    source = resolve_relative(module, is_package, len(node.relative),
                              _dotted(node.module) if node.module is not None else "")
    if source is None:
        return
    if isinstance(node.names, cst.ImportStar):
        yield "*", ImportBinding(source)
        return
    for alias in node.names:
        name = _dotted(alias.name)
        local = alias.asname.name.value if alias.asname is not None else name
        yield local, FromImportBinding(source, name)


class _Positions(PositionProvidingCodegenState):
    """libcst's position-providing code generation, recording plain tuples by node id.

    The same positions as ``PositionProvider`` (the tests compare them), at about half the
    cost: no ``CodePosition``/``CodeRange`` objects, no generator-based context managers,
    and no hashing of nodes (libcst's ``__hash__`` is Python code)."""

    # False when the caller has the code already: no list of every token. The first is kept
    # all the same: an empty list tells libcst's ``Module`` that the module has no token.
    keep_tokens = True

    def add_token(self, value: str) -> None:
        if self.keep_tokens or not self.tokens:
            self.tokens.append(value)
        if "\n" in value or "\r" in value:
            segments = _LINE_BREAK.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def add_indent_tokens(self) -> None:
        if self.keep_tokens or not self.tokens:
            self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self.column += len(token)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        line, column = self._stack.pop()
        found = self.provider.found
        if id(node) not in found:  # a syntactic position was recorded already
            found[id(node)] = (line, column, self.line, self.column)

    def record_syntactic_position(self, node, *, start_node=None, end_node=None):
        return _SyntacticPosition(self, node, start_node, end_node)


class _SyntacticPosition:
    __slots__ = ("state", "node", "start_node", "end_node", "start")

    def __init__(self, state, node, start_node, end_node) -> None:
        self.state, self.node = state, node
        self.start_node, self.end_node = start_node, end_node

    def __enter__(self) -> None:
        self.start = (self.state.line, self.state.column)

    def __exit__(self, *exc_info) -> None:
        state, found = self.state, self.state.provider.found
        start = found[id(self.start_node)][:2] if self.start_node is not None else self.start
        end = (found[id(self.end_node)][2:] if self.end_node is not None
               else (state.line, state.column))
        found[id(self.node)] = start + end


class _Found:
    def __init__(self) -> None:
        self.found: Dict[int, Tuple[int, int, int, int]] = {}


Positions = Dict[int, Tuple[int, int, int, int]]  # id(node) -> (line, column, end line, column)


def positions(module: cst.Module, code: Optional[str] = None) -> Tuple[Positions, str]:
    """The position of every node of ``module`` (as libcst's ``PositionProvider`` gives it:
    lines from 1, columns from 0) by node id, and the module's code, from one code generation
    (``code``: the text ``module`` was parsed from, which libcst gives back exactly, so the
    tokens need not be kept). Falls back to the public route (``MetadataWrapper``, about twice
    as slow) if libcst's internals change."""
    try:
        state = _Positions(default_indent=module.default_indent,
                           default_newline=module.default_newline, provider=_Found())
        state.keep_tokens = code is None
        module._codegen(state)
        return state.provider.found, "".join(state.tokens) if code is None else code
    except (AttributeError, TypeError):
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        return {id(node): (r.start.line, r.start.column, r.end.line, r.end.column)
                for node, r in wrapper.resolve(PositionProvider).items()}, module.code


def extract_module(module: cst.Module, path: str, module_name: str,
                   is_package: bool, code: Optional[str] = None) -> ModuleFacts:
    """``code``: the text ``module`` was parsed from, when the caller has it."""
    return ModuleExtractor(module, path, module_name, is_package, code).extract()
