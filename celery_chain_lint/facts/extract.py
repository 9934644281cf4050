"""One pass over a module's syntax tree (Python's own ``ast``), producing its ``ModuleFacts``.

The extractor follows Python's scoping closely enough for the rules and no further:
- module-level names become bindings, resolved later across modules by the project index;
- inside a function, a name assigned by a straight-line statement is replaced by the assigned
  expression (so ``sig = add.s(1)`` then ``sig.delay()`` is seen as ``add.s(1).delay()``); a name
  assigned in a branch or a loop, or mutated (``sigs.append``), becomes ``Opaque`` from then on;
- function-local imports keep their target, everything else local is ``Opaque``.

Positions are the tree's, in characters (``ast`` counts UTF-8 bytes), and span what a reader
calls the expression: a parenthesized tuple or a generator expression without its brackets and
the blank space inside them, as libcst, which this pass replaced, placed them (findings and
messages stay what they were). ``ast.parse`` is about ten times cheaper than libcst's parse and
its position pass, which were most of a cold run.
"""
from __future__ import annotations

import ast
import re
from typing import Dict, Iterable, List, Optional, Sequence as Seq, Set, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.roots import dotted_parts, looks_like_canvas
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

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FOR = (ast.For, ast.AsyncFor)
_TRY = (ast.Try, getattr(ast, "TryStar", ast.Try))
_WITH = (ast.With, ast.AsyncWith)
_MATCH = getattr(ast, "Match", ())
_LEAVING = (ast.Return, ast.Raise, ast.Continue, ast.Break)
# Expressions the rules see as Opaque, by the name they know them by (``Opaque.kind``).
_OPAQUE_KINDS = {"Compare": "Comparison", "UnaryOp": "UnaryOperation",
                 "BoolOp": "BooleanOperation", "JoinedStr": "FormattedString",
                 "YieldFrom": "Yield", "Starred": "StarredElement"}


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

    def assignment(self, node: ast.Assign, value_read: ir.Expr) -> None:
        """``value_read``: the value as the extractor read it (kept for a call: the index
        follows ``Celery(...)`` made in the function, ``index/flask_apps.py``)."""
        value = _written(node.value, value_read)
        names = set()
        for target in node.targets:
            if isinstance(target, ast.Name):
                names.add(target.id)
            else:
                stored = _store_target(target)
                if stored is not None:
                    self.stores.append(stored + (value,))
        for name in names:
            self.assigned.setdefault(name, []).append(value)

    def call(self, node: ast.Call) -> None:
        position = 0
        for keyword, star, value in _call_arguments(node):
            if keyword is not None or star == "**":
                continue
            if not star and isinstance(value, ast.Name):
                self.passes.append((node.func.id, position, value.id))
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
    def __init__(self, module: ast.Module, path: str, module_name: str, is_package: bool,
                 code: str):
        self.tree = module
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

    def conditional_block(self, statements: Seq[ast.stmt], scope: _Scope) -> None:
        """A block that may or may not run (an if branch, a loop body, a try clause)."""
        self._conditional_depth += 1
        try:
            self.block(statements, scope)
        finally:
            self._conditional_depth -= 1

    # ---- positions and text ----

    def column(self, line: int, offset: int) -> int:
        """The 0-based column in characters of the UTF-8 ``offset`` in ``line``."""
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.isascii():
            return offset
        return len(text.encode("utf-8")[:offset].decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> ir.Span:
        line, end_line = node.lineno, node.end_lineno
        return ir.Span(line, self.column(line, node.col_offset) + 1,
                       end_line, self.column(end_line, node.end_col_offset) + 1)

    def inner_span(self, node: ast.AST, first: ast.AST, last: ast.AST) -> ir.Span:
        """The span of bracketed ``node`` from its first token inside the brackets (``first``
        starts there) to the end of its last (``last`` ends there, or a closing parenthesis
        or comma after it)."""
        outer, head, tail = self.span(node), self.span(first), self.span(last)
        line, column = self.skip_blank((outer.line, outer.column + 1), (head.line, head.column))
        end = self.last_token_end((tail.end_line, tail.end_column),
                                  (outer.end_line, outer.end_column - 1))
        return ir.Span(line, column, end[0], end[1])

    def between(self, start: Tuple[int, int], end: Tuple[int, int]) -> List[str]:
        """The lines of the text from ``start`` to ``end`` (1-based lines and columns)."""
        if start[0] == end[0]:
            return [self.lines[start[0] - 1][start[1] - 1:end[1] - 1]]
        lines = [self.lines[start[0] - 1][start[1] - 1:]]
        lines += self.lines[start[0]:end[0] - 1]
        return lines + [self.lines[end[0] - 1][:end[1] - 1]]

    def skip_blank(self, start: Tuple[int, int], limit: Tuple[int, int]) -> Tuple[int, int]:
        """The first position from ``start`` (before ``limit``) that is not blank space or a
        comment: no code sits between them but brackets."""
        for index, text in enumerate(self.between(start, limit)):
            code = text.split("#", 1)[0]
            stripped = len(code) - len(code.lstrip(" \t\f\\"))
            if stripped < len(code):
                line = start[0] + index
                column = (start[1] if index == 0 else 1) + stripped
                return line, column
        return limit

    def last_token_end(self, start: Tuple[int, int], limit: Tuple[int, int]) -> Tuple[int, int]:
        """The end of the closing parentheses and comma from ``start`` (blank space and
        comments between them), up to ``limit``; ``start`` when there are none."""
        end = start
        for index, text in enumerate(self.between(start, limit)):
            line = start[0] + index
            first = start[1] if index == 0 else 1
            for offset, character in enumerate(text):
                if character in "),":
                    end = (line, first + offset + 1)
                elif character == "#":
                    break
                elif character not in " \t\f\\":
                    return end
        return end

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

    def parenthesized(self, node: ast.Tuple) -> bool:
        """Whether a tuple has brackets of its own (``(a, b)``, not ``(a), b``): more opening
        parentheses before its first item than that item closes before the next comma."""
        span, first = self.span(node), self.span(node.elts[0])
        opened = "".join(self.between((span.line, span.column), (first.line, first.column)))
        if "(" not in opened and "{" not in opened:  # ``{`` of an f-string's field, in 3.11
            return False
        after = self.between((first.end_line, first.end_column), (span.end_line, span.end_column))
        closed = "".join(text.split("#", 1)[0] for text in after).split(",", 1)[0]
        return opened.count("(") + opened.count("{") > closed.count(")") + closed.count("}")

    def one_line_suite(self, body: Seq[ast.stmt]) -> bool:
        """``class A: x = 1``: the body on the line of its header (not an indented block)."""
        first = body[0]
        text = self.lines[first.lineno - 1]
        return text[:self.column(first.lineno, first.col_offset)].strip() != ""

    def name_span(self, node: ast.AST) -> ir.Span:
        """The span of a definition's name (``ast`` places the ``def`` or ``class``)."""
        span = self.span(node)
        text = self.lines[span.line - 1]
        found = _DEFINITION_HEAD.match(text, span.column - 1)
        if found is not None and text.startswith(node.name, found.end()):
            column = found.end() + 1
            return ir.Span(span.line, column, span.line, column + len(node.name))
        for line in range(span.line + 1, min(span.end_line, span.line + 20) + 1):
            text = self.lines[line - 1]
            column = text.find(node.name)  # after a line continuation
            if column >= 0:
                return ir.Span(line, column + 1, line, column + 1 + len(node.name))
        return span

    # ---- statements ----

    def block(self, statements: Seq[ast.stmt], scope: _Scope) -> None:
        for statement in statements:
            self.statement(statement, scope)

    def statement(self, node: ast.stmt, scope: _Scope) -> None:
        kind = type(node)
        if kind in _SIMPLE:
            self.small_statement(node, scope)
        elif kind in _FUNCTIONS:
            self.function_def(node, scope)
        elif kind is ast.ClassDef:
            self.class_def(node, scope)
        elif kind is ast.If:
            tests, bodies = self.if_chain(node)
            self.branches(scope, tests, bodies, exhaustive=len(bodies) > len(tests))
        elif kind in _FOR or kind is ast.While:
            self.loop(node, scope)
        elif kind in _TRY:
            self.try_statement(node, scope)
        elif kind in _WITH:
            self.with_statement(node, scope)
        elif _MATCH and kind is _MATCH:
            self.branches(scope, [node.subject], [case.body for case in node.cases])

    def if_chain(self, node: ast.If):
        """The tests and bodies of an if/elif/else statement (``else:`` holding only an ``if``
        is not an ``elif``: a block of its own)."""
        tests, bodies = [node.test], [node.body]
        orelse = node.orelse
        while orelse:
            if len(orelse) == 1 and isinstance(orelse[0], ast.If) and self.is_elif(orelse[0]):
                tests.append(orelse[0].test)
                bodies.append(orelse[0].body)
                orelse = orelse[0].orelse
            else:
                bodies.append(orelse)
                orelse = None
        return tests, bodies

    def is_elif(self, node: ast.If) -> bool:
        text = self.lines[node.lineno - 1]
        return text.startswith("elif", self.column(node.lineno, node.col_offset))

    def branches(self, scope: _Scope, tests: Seq[ast.expr],
                 bodies: Seq[Seq[ast.stmt]], exhaustive: bool = False) -> None:
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
        body = node.body
        assigned = _assigned_names(body, scope)
        if isinstance(node, _FOR):
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
            if node.orelse:
                self.conditional_block(node.orelse, scope)
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
        statements = list(node.body) + list(node.orelse)
        bound: Set[str] = set()
        for statement in statements:
            bound |= _statement_assignments(statement)[0]
        if isinstance(node, _FOR):
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
        assigned = _assigned_names(node.body, scope)
        self.conditional_block(node.body, scope)
        scope.handlers = outer
        saved = dict(scope.env)
        self.forget(scope, assigned)
        for handler in node.handlers:
            if handler.name is not None:
                self.forget(scope, {handler.name})
            self.conditional_block(handler.body, scope)
        if node.orelse:
            scope.env = saved
            self.conditional_block(node.orelse, scope)
        if node.finalbody:
            self.block(node.finalbody, scope)
        for handler in node.handlers:
            assigned |= _assigned_names(handler.body, scope)
        self.forget(scope, assigned)

    def with_statement(self, node, scope: _Scope) -> None:
        items = []
        for item in node.items:
            value = self.expr(item.context_expr, scope)
            items.append(value)
            target = item.optional_vars
            if target is not None:
                self.forget(scope, _target_names(target))
                if scope.kind == "function" and isinstance(target, ast.Name) \
                        and value is not None:
                    # ``with httpx.Client() as c``: ``c`` is what ``__enter__`` returns, a
                    # call on the client (rules read where it comes from: ``c.post`` is
                    # ``httpx.Client().__enter__().post``).
                    enter = ir.Attribute(value, "__enter__", span=value.span, text=value.text)
                    scope.env[target.id] = self.bounded(
                        ir.Call(enter, (), span=value.span, text=value.text))
        outer = scope.with_items
        scope.with_items = outer + tuple(items)
        self.block(node.body, scope)
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


    # ---- small statements ----

    def small_statement(self, node: ast.stmt, scope: _Scope) -> None:
        kind = type(node)
        if kind is ast.Expr:
            value = self.expr(node.value, scope)
            self.add_root(scope, "expr", value)
            self.track_method_call(node.value, value, scope)
        elif kind is ast.Assign:
            value = self.expr(node.value, scope)
            self.add_root(scope, "assign", value)
            if scope.notes is not None:
                scope.notes.assignment(node, value)
            for target in node.targets:
                self.assign(target, value, scope)
        elif kind is ast.AnnAssign:
            if node.value is not None:
                value = self.expr(node.value, scope)
                self.add_root(scope, "assign", value)
                self.assign(node.target, value, scope)
        elif kind is ast.AugAssign:
            value = self.expr(node.value, scope)
            self.add_root(scope, "assign", value)
            self.augmented_assign(node, value, scope)
        elif kind is ast.Return:
            value = self.expr(node.value, scope) if node.value is not None else None
            if value is not None:
                self.add_root(scope, "return", value)
            function = scope.function_scope()
            if function is not None and function.function is not None:
                function.function.returns.append((self.span(node), value))
            if scope.notes is not None:
                scope.notes.returns.append(
                    node.value.id if isinstance(node.value, ast.Name) else None)
        elif kind is ast.Import or kind is ast.ImportFrom:
            self.import_statement(node, scope)
        elif kind is ast.Delete:
            for target in node.targets:
                self.forget(scope, _target_names(target))
        elif kind is ast.Global or kind is ast.Nonlocal:
            function = scope.function_scope()
            if function is not None:
                for name in node.names:
                    function.local_names.discard(name)
        elif kind is ast.Raise:
            if node.exc is not None:
                self.add_root(scope, "other", self.expr(node.exc, scope))
        elif kind is ast.Assert:
            self.expr(node.test, scope)

    def add_root(self, scope: _Scope, kind: str, value: Optional[ir.Expr]) -> None:
        if value is not None and scope.kind != "class" and looks_like_canvas(value):
            function = scope.function_scope()
            self.facts.roots.append(Root(function.qualname if function else "", kind, value))

    def assign(self, target: ast.expr, value: ir.Expr, scope: _Scope) -> None:
        if isinstance(target, ast.Name):
            self.bind(scope, target.id, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            elements = target.elts
            if (isinstance(value, ir.Sequence) and not value.has_splat
                    and len(value.items) == len(elements)
                    and not any(isinstance(e, ast.Starred) for e in elements)):
                for element, item in zip(elements, value.items):
                    self.assign(element, item, scope)
            else:
                self.forget(scope, _target_names(target))
        elif isinstance(target, ast.Attribute):
            if scope.kind == "module":
                self.facts.attribute_assignments.append((self.expr(target, scope), value))
            elif _writes_conf(target):
                self.conf_write_in_function(self.expr(target, scope), scope)
            base = _base_name(target)
            if base is not None and scope.kind == "function" and base in scope.env:
                self.attribute_written(scope, base, target)
        elif isinstance(target, ast.Subscript):
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

    def attribute_written(self, scope: _Scope, name: str, target: ast.Attribute) -> None:
        """``name.attr = v`` (or ``name.a.b = v``) in a function: ``name`` is no longer known
        as a value, but stays the object it was (``ir.Changed``)."""
        path = []
        node: ast.expr = target
        while isinstance(node, ast.Attribute):
            path.append(node.attr)
            node = node.value
        current = scope.env[name]
        if not isinstance(node, ast.Name) or current is None or (
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

    def forget_mutated(self, target: ast.expr, scope: _Scope) -> None:
        """``name[k] = v``, ``name.attr[k] = v``, ``name.attr += v``: inside a function the
        local ``name`` no longer has the value the extractor knows. At module level the name
        stays bound to the same object: a write to one of its attributes
        (``app.conf.beat_schedule["x"] = ...`` under an ``if``, as taiga's ``celery.py``) does
        not rebind it, as an unconditional one does not (``assign``); an item written into the
        object itself (``FLOWS[0] = ...``) under an ``if`` does make its value unknown."""
        base = _base_name(target)
        if base is None:
            return
        if scope.kind == "module" and not (isinstance(target, ast.Subscript)
                                           and isinstance(target.value, ast.Name)):
            return
        self.forget(scope, [base])

    def conf_write_in_function(self, written: ir.Attribute, scope: _Scope) -> None:
        if not _on_a_local(written.value.value):
            function = scope.function_scope()
            self.facts.conf_writes_in_functions.append(
                (function.qualname if function else "", written))

    def augmented_assign(self, node: ast.AugAssign, value: ir.Expr, scope: _Scope) -> None:
        target = node.target
        if not isinstance(target, ast.Name):
            self.forget_mutated(target, scope)
            return
        name = target.id
        if (scope.kind == "function" and isinstance(node.op, ast.BitOr)
                and name in scope.env and not _forgotten(scope.env[name])):
            left = scope.env[name]
            scope.env[name] = self.bounded(
                ir.BinOp("|", left, value, span=left.span, text=left.text))
        else:
            self.forget(scope, [name])

    def track_method_call(self, node: ast.expr, value: ir.Expr, scope: _Scope) -> None:
        """A statement ``name.method(...)`` may change what a local name holds."""
        if scope.kind != "function" or not isinstance(node, ast.Call):
            return
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return
        name, method = func.value.id, func.attr
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

    def function_def(self, node, scope: _Scope) -> None:
        qualname = _qualname(scope, node.name)
        facts = FunctionFacts(
            qualname=qualname,
            name=node.name,
            span=self.span(node),
            name_span=self.name_span(node),
            params=_params(node.args),
            decorators=tuple(self.expr(d, scope) for d in node.decorator_list),
            is_async=isinstance(node, ast.AsyncFunctionDef),
            is_method=scope.kind == "class",
        )
        self.facts.functions[qualname] = facts
        if scope.kind == "module":
            self.bind_module(node.name, DefBinding("function", qualname))
        elif scope.kind == "function":
            scope.env[node.name] = ir.Opaque(kind="local function", text=node.name)
        inner = _Scope("function", qualname, parent=scope,
                       local_names=_local_names(node))
        inner.function = facts
        if scope.kind == "module":
            inner.notes = _StoreNotes()
        self.block(node.body, inner)
        facts.passes_through = self.passes_through(node, facts)
        if inner.notes is not None:
            facts.stores = inner.notes.stores_of(facts.params)

    def passes_through(self, node, facts: FunctionFacts) -> Optional[ir.Expr]:
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
        definition = next((statement for statement in node.body
                           if isinstance(statement, _FUNCTIONS) and statement.name == name),
                          None)
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
        if _assigned_names(definition.body) & {args, kwargs, wrapped}:
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

    def class_def(self, node: ast.ClassDef, scope: _Scope) -> None:
        qualname = _qualname(scope, node.name)
        facts = ClassFacts(
            qualname=qualname,
            name=node.name,
            span=self.span(node),
            bases=tuple(self.expr(base, scope) for base in node.bases
                        if not isinstance(base, ast.Starred)),
            keywords={k.arg: self.expr(k.value, scope) for k in node.keywords
                      if k.arg is not None},
        )
        self.facts.classes[qualname] = facts
        if scope.kind == "module":
            self.bind_module(node.name, DefBinding("class", qualname))
        elif scope.kind == "function":
            scope.env[node.name] = ir.Opaque(kind="local class")
        body = _Scope("class", qualname, parent=scope)
        if node.body and self.one_line_suite(node.body):  # statements, not attributes
            self.block(node.body, body)
            return
        for statement in node.body:
            self.class_statement(statement, body, facts)

    def class_statement(self, node: ast.stmt, scope: _Scope, facts: ClassFacts) -> None:
        if isinstance(node, _FUNCTIONS):
            facts.methods[node.name] = _qualname(scope, node.name)
            self.function_def(node, scope)
        elif type(node) in _SIMPLE:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                facts.attributes[node.targets[0].id] = self.expr(node.value, scope)
            elif isinstance(node, ast.AnnAssign) and node.value is not None \
                    and isinstance(node.target, ast.Name):
                facts.attributes[node.target.id] = self.expr(node.value, scope)
        else:
            self.statement(node, scope)

    # ---- expressions ----

    def expr(self, node: Optional[ast.expr], scope: Optional[_Scope],
             depth: int = 0) -> Optional[ir.Expr]:
        if node is None:
            return None
        if scope is None:
            scope = self.module_scope
        kind = type(node)
        if kind is ast.GeneratorExp or kind is ast.Tuple and not node.elts:
            span = self.bracketed_span(node)
        elif kind is ast.Tuple and self.parenthesized(node):
            span = self.inner_span(node, node.elts[0], node.elts[-1])
        else:
            span = self.span(node)
        if depth > MAX_DEPTH:
            return ir.Opaque(kind="too deep", span=span)
        convert = _CONVERTERS.get(kind)
        if convert is not None:
            return convert(self, node, scope, depth + 1, span)
        parts = tuple(self.expr(child, scope, depth + 1) for child in _sub_expressions(node))
        name = kind.__name__
        return ir.Opaque(kind=_OPAQUE_KINDS.get(name, name), parts=parts, span=span,
                         text=self.text(span))

    def bracketed_span(self, node) -> ir.Span:
        """An empty tuple's span (between its brackets), or a generator expression's."""
        if isinstance(node, ast.Tuple):
            outer = self.span(node)
            line, column = self.skip_blank((outer.line, outer.column + 1),
                                           (outer.end_line, outer.end_column - 1))
            return ir.Span(line, column, line, column)
        last = node.generators[-1]
        return self.inner_span(node, node.elt, last.ifs[-1] if last.ifs else last.iter)

    def expr_Name(self, node: ast.Name, scope: _Scope, depth: int, span) -> ir.Expr:
        name = node.id
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

    def expr_Attribute(self, node: ast.Attribute, scope, depth, span) -> ir.Expr:
        attr_span = ir.Span(span.end_line, span.end_column - len(node.attr),
                            span.end_line, span.end_column)
        return ir.Attribute(self.expr(node.value, scope, depth), node.attr,
                            attr_span=attr_span, span=span, text=self.text(span))

    def expr_Call(self, node: ast.Call, scope, depth, span) -> ir.Expr:
        args = tuple(ir.Arg(self.expr(value, scope, depth), keyword=keyword, star=star)
                     for keyword, star, value in _call_arguments(node))
        call = ir.Call(self.expr(node.func, scope, depth), args, span=span, text=self.text(span))
        function = scope.function_scope()
        if function is not None and function.function is not None:
            function.function.calls.append(
                CallSite(call, with_items=scope.with_items, handlers=scope.handlers))
            if function.notes is not None and isinstance(node.func, ast.Name):
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

    def expr_BinOp(self, node: ast.BinOp, scope, depth, span) -> ir.Expr:
        left = self.expr(node.left, scope, depth)
        right = self.expr(node.right, scope, depth)
        if isinstance(node.op, ast.BitOr):
            return ir.BinOp("|", left, right, span=span, text=self.text(span))
        return ir.Opaque(kind="binary operation", parts=(left, right), span=span,
                         text=self.text(span))

    def expr_BoolOp(self, node: ast.BoolOp, scope, depth, span) -> ir.Expr:
        """``a and b and c`` read as ``(a and b) and c``, one operation at a time."""
        values = node.values
        left = self.expr(values[0], scope, depth)
        for index, value in enumerate(values[1:], 1):
            right = self.expr(value, scope, depth)
            if index == len(values) - 1:
                inner = span
            else:
                end = self.span(value)
                end = self.last_token_end((end.end_line, end.end_column),
                                          self.next_start(values[index + 1]))
                inner = ir.Span(span.line, span.column, end[0], end[1])
            left = ir.Opaque(kind="BooleanOperation", parts=(left, right), span=inner,
                             text=self.text(inner))
        return left

    def next_start(self, node: ast.AST) -> Tuple[int, int]:
        span = self.span(node)
        return span.line, span.column

    def _sequence(self, kind: str, node, scope, depth, span) -> ir.Expr:
        items = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                value = self.expr(element.value, scope, depth)
                value = ir.Starred(value, span=value.span)
            else:
                value = self.expr(element, scope, depth)
            items.append(value)
        return ir.Sequence(kind, tuple(items), span=span, text=self.text(span))

    def expr_List(self, node, scope, depth, span):
        return self._sequence("list", node, scope, depth, span)

    def expr_Tuple(self, node, scope, depth, span):
        return self._sequence("tuple", node, scope, depth, span)

    def expr_Set(self, node, scope, depth, span):
        return self._sequence("set", node, scope, depth, span)

    def expr_Dict(self, node: ast.Dict, scope, depth, span) -> ir.Expr:
        keys, values = [], []
        for key, value in zip(node.keys, node.values):
            keys.append(None if key is None else self.expr(key, scope, depth))
            values.append(self.expr(value, scope, depth))
        return ir.Dict(tuple(keys), tuple(values), span=span, text=self.text(span))

    def expr_Constant(self, node: ast.Constant, scope, depth, span) -> ir.Expr:
        value = node.value
        if value is Ellipsis or isinstance(value, complex):
            return ir.Opaque(kind="Ellipsis" if value is Ellipsis else "Imaginary", parts=(),
                             span=span, text=self.text(span))
        return ir.Const(value, span=span, text=self.text(span))

    def expr_JoinedStr(self, node: ast.JoinedStr, scope, depth, span) -> ir.Expr:
        """An f-string; adjacent to other strings, a string whose value is not known."""
        if _concatenated(self.between((span.line, span.column),
                                      (span.end_line, span.end_column))):
            return ir.Const(None, span=span, text=self.text(span))
        parts = tuple(self.expr(child, scope, depth) for child in _sub_expressions(node))
        return ir.Opaque(kind="FormattedString", parts=parts, span=span, text=self.text(span))

    def note_iterated(self, node: ast.expr, scope: _Scope) -> None:
        function = scope.function_scope()
        if isinstance(node, ast.Name) and function is not None and function.function is not None:
            function.function.iterated.append(node.id)

    def _comprehension(self, kind: str, node, scope, depth, span) -> ir.Expr:
        inner = _Scope("comprehension", scope.qualname, parent=scope)
        inner.function = None
        for clause in node.generators:
            self.expr(clause.iter, inner, depth)
            self.note_iterated(clause.iter, scope)
            for name in _target_names(clause.target):
                inner.env[name] = COMPREHENSION_VARIABLE
        element = node.value if isinstance(node, ast.DictComp) else node.elt
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
                       parent=scope, local_names=_lambda_parameters(node.args))
        self.add_root(inner, "lambda", self.expr(node.body, inner, depth))
        return ir.Opaque(kind="lambda", span=span, text=self.text(span))


_CONVERTERS = {getattr(ast, name[len("expr_"):]): function
               for name, function in vars(ModuleExtractor).items() if name.startswith("expr_")}
_SIMPLE = frozenset({ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return, ast.Import,
                     ast.ImportFrom, ast.Delete, ast.Global, ast.Nonlocal, ast.Raise,
                     ast.Assert, ast.Pass, ast.Break, ast.Continue})
_DEFINITION_HEAD = re.compile(r"(?:async[ \t\f]+)?(?:def|class)[ \t\f]+")


# ---- helpers on syntax tree nodes ----


def _call_arguments(node: ast.Call) -> List[Tuple[Optional[str], str, ast.expr]]:
    """(keyword, star, value) of each argument of a call, in the order they are written
    (``ast`` lists the positional ones first: ``f(k=1, *rest)`` is legal)."""
    arguments = [(None, "*", arg.value, arg) if isinstance(arg, ast.Starred)
                 else (None, "", arg, arg) for arg in node.args]
    keywords = [(k.arg, "**" if k.arg is None else "", k.value, k) for k in node.keywords]
    if arguments and keywords and _position(keywords[0][3]) < _position(arguments[-1][3]):
        arguments = sorted(arguments + keywords, key=lambda a: _position(a[3]))
    else:
        arguments += keywords
    return [(keyword, star, value) for keyword, star, value, _ in arguments]


def _position(node: ast.AST) -> Tuple[int, int]:
    return node.lineno, node.col_offset


def _lambda_parameters(parameters: ast.arguments) -> Set[str]:
    return {item.name for item in _params(parameters).items}


def _forgotten(value: Optional[ir.Expr]) -> bool:
    """A local whose value is no longer known: reassigned, or its attributes written."""
    return value is OPAQUE or isinstance(value, ir.Changed)


def _sub_expressions(node: ast.AST) -> List[ast.expr]:
    """The nearest expressions below ``node`` in the order they are written, looking through
    what holds them (keywords, slices, an f-string's replacement fields); a subscript's
    unbracketed tuple of keys is its keys."""
    found: List[ast.expr] = []
    stack = [(child, node) for child in _children(node)]
    while stack:
        child, parent = stack.pop()
        if isinstance(child, ast.Constant) and isinstance(parent, ast.JoinedStr):
            continue  # an f-string's literal text
        if isinstance(child, (ast.Slice, ast.FormattedValue)) or (
                isinstance(child, ast.JoinedStr) and isinstance(parent, ast.FormattedValue)) or (
                isinstance(child, ast.Tuple) and isinstance(parent, ast.Subscript)
                and child is parent.slice and _bare_keys(child)):
            stack.extend((inner, child) for inner in _children(child))
        elif isinstance(child, ast.expr):
            found.append(child)
        else:
            stack.extend((inner, child) for inner in _children(child))
    found.sort(key=_position)
    return found


def _bare_keys(node: ast.Tuple) -> bool:
    """``x[1, 2]``: keys without brackets of their own (``x[(1, 2)]`` has one key)."""
    return bool(node.elts) and _position(node) == _position(node.elts[0])


def _concatenated(lines: List[str]) -> bool:
    """Whether the text of a string literal is several adjacent literals."""
    import io
    import tokenize

    strings = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO("\n".join(lines)).readline):
            if token.type == tokenize.STRING or token.type == getattr(tokenize,
                                                                      "FSTRING_START", -1):
                strings += 1
    except (tokenize.TokenError, SyntaxError):
        pass
    return strings > 1


def _qualname(scope: _Scope, name: str) -> str:
    if scope.kind == "module":
        return name
    if scope.kind == "class":
        return f"{scope.qualname}.{name}"
    return f"{scope.qualname}.<locals>.{name}"


def _params(parameters: ast.arguments) -> Params:
    positional = parameters.posonlyargs + parameters.args
    first_default = len(positional) - len(parameters.defaults)
    items = [Param(p.arg, POSITIONAL_ONLY if index < len(parameters.posonlyargs)
                   else POSITIONAL_OR_KEYWORD, index >= first_default)
             for index, p in enumerate(positional)]
    if parameters.vararg is not None:
        items.append(Param(parameters.vararg.arg, VAR_POSITIONAL))
    items += [Param(p.arg, KEYWORD_ONLY, default is not None)
              for p, default in zip(parameters.kwonlyargs, parameters.kw_defaults)]
    if parameters.kwarg is not None:
        items.append(Param(parameters.kwarg.arg, VAR_KEYWORD))
    return Params(tuple(items))


def _writes_conf(target: ast.expr) -> bool:
    """``<owner>.conf.<name> = ...`` or ``<owner>.conf[...] = ...``: a setting of an app
    (``roots.body_reading`` reads the bodies that hold one now, unless the owner is reached
    from a parameter)."""
    return isinstance(target.value, ast.Attribute) and target.value.attr == "conf"


def _string_key(node: ast.Subscript) -> Optional[str]:
    """The key of ``x["key"]``, when it is one plain string."""
    key = node.slice
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        return key.value
    return None


def _conf_item(target: ast.Subscript) -> Optional[str]:
    """The setting ``<owner>.conf["name"] = ...`` writes, when ``name`` is a plain string."""
    return _string_key(target) if _writes_conf(target) else None


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


def _written(node: ast.expr, value_read: ir.Expr) -> Written:
    """A stored or assigned value as ``Stores`` reads it."""
    if isinstance(node, ast.Name):
        return "name", (node.id,)
    if isinstance(node, ast.Call):
        return "call", dotted_parts(node.func), \
            value_read if isinstance(value_read, ir.Call) else None
    dotted = dotted_parts(node)
    return ("dotted", dotted) if dotted is not None else None


def _store_target(target: ast.expr) -> Optional[Tuple[str, Tuple[str, str]]]:
    """(owner, key) of ``owner.attribute`` or ``owner.extensions["key"]``, ``owner`` a name."""
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        return target.value.id, ("attribute", target.attr)
    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Attribute) \
            and target.value.attr == "extensions" and isinstance(target.value.value, ast.Name):
        key = _string_key(target)
        if key is not None:
            return target.value.value.id, ("extension", key)
    return None


def _on_a_local(owner: ir.Expr) -> bool:
    """Whether ``owner`` is reached from a local the extractor cannot follow (``self.app``):
    never an app the index knows."""
    while isinstance(owner, (ir.Attribute, ir.Call)):
        owner = owner.func if isinstance(owner, ir.Call) else owner.value
    return isinstance(owner, ir.Opaque) and owner.kind in ("local", OPAQUE.kind)


def _base_name(node: ast.expr) -> Optional[str]:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _target_names(target: ast.AST) -> Set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        names: Set[str] = set()
        for element in target.elts:
            names |= _target_names(element)
        return names
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()


# Per statement (by id, reset for every module): the names it binds and the names it mutates.
# Nested blocks are asked again as the extractor descends; each statement is walked once.
_ASSIGNED_MEMO: Dict[int, Tuple[frozenset, frozenset]] = {}
# Nested scopes whose bindings are not the block's own.
_OWN_SCOPE = (ast.Lambda, ast.GeneratorExp, ast.ListComp, ast.SetComp, ast.DictComp)


def _statement_assignments(statement: ast.stmt) -> Tuple[frozenset, frozenset]:
    """(names bound, local names mutated by ``name.method(...)``) in ``statement``, not looking
    into nested functions, classes, lambdas or comprehensions."""
    known = _ASSIGNED_MEMO.get(id(statement))
    if known is not None:
        return known
    names: Set[str] = set()
    mutated: Set[str] = set()
    if isinstance(statement, _DEFINITIONS):
        names.add(statement.name)  # its decorators, bases and defaults bind nothing here
        stack: List[ast.AST] = []
    else:
        stack = _children(statement)
        names |= _bound_by(statement)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.stmt):
            inner_names, inner_mutated = _statement_assignments(node)
            names |= inner_names
            mutated |= inner_mutated
            continue
        if isinstance(node, _OWN_SCOPE):
            continue
        names |= _bound_by(node)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.attr not in NON_MUTATING_METHODS:
                mutated.add(func.value.id)
        stack.extend(_children(node))
    result = (frozenset(names), frozenset(mutated))
    _ASSIGNED_MEMO[id(statement)] = result
    return result


# Per node class: the fields that may hold nodes (``ast.iter_child_nodes`` asks every field).
_CHILD_FIELDS: Dict[type, Tuple[str, ...]] = {}
_PLAIN_FIELDS = frozenset({"ctx", "op", "ops", "id", "attr", "arg", "name", "asname", "module",
                           "level", "conversion", "kind", "type_comment", "is_async"})


def _children(node: ast.AST) -> List[ast.AST]:
    """The child nodes of ``node`` (as ``ast.iter_child_nodes``, a few times faster)."""
    names = _CHILD_FIELDS.get(type(node))
    if names is None:
        names = _CHILD_FIELDS[type(node)] = tuple(
            name for name in node._fields if name not in _PLAIN_FIELDS)
    found: List[ast.AST] = []
    for name in names:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            found.append(value)
        elif isinstance(value, list):
            found.extend(item for item in value if isinstance(item, ast.AST))
    return found


def _bound_by(node: ast.AST) -> Set[str]:
    """The names ``node`` itself binds (not those of the statements it holds)."""
    kind = type(node)
    if kind is ast.Assign:
        names: Set[str] = set()
        for target in node.targets:
            names |= _target_names(target)
        return names
    if kind in (ast.AnnAssign, ast.AugAssign, ast.NamedExpr) or kind in _FOR:
        return _target_names(node.target)
    if kind is ast.withitem:
        return _target_names(node.optional_vars) if node.optional_vars is not None else set()
    if kind is ast.ExceptHandler:
        return {node.name} if node.name else set()
    if kind is ast.alias:
        if node.asname is not None:
            return {node.asname}
        return set() if node.name == "*" else {node.name.split(".")[0]}
    return set()


def _assigned_names(statements: Seq[ast.stmt], scope: Optional[_Scope] = None) -> Set[str]:
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


def _local_names(node) -> Set[str]:
    names = {item.name for item in _params(node.args).items}
    return names | _assigned_names(node.body)


def _uses_of(statements: Seq[ast.stmt], name: str) -> Optional[List[str]]:
    """The methods called on the local ``name`` in ``statements`` (``name.append(...)``),
    nested functions, lambdas and classes left out; None when ``name`` is changed otherwise
    (``name[i] = ...``, ``del name[i]``) or handed to a nested function."""
    methods: List[str] = []
    stack: List[ast.AST] = list(statements)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if _mentions(node, name):
                return None  # a closure may change it
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name:
            methods.append(node.func.attr)
        else:
            for target in _written_targets(node):
                if isinstance(target, (ast.Subscript, ast.Attribute)) \
                        and _base_name(target) == name:
                    return None
        stack.extend(_children(node))
    return methods


def _written_targets(node: ast.AST) -> Seq[ast.expr]:
    """What an assignment, augmented assignment or ``del`` of one target writes."""
    kind = type(node)
    if kind is ast.Assign:
        return node.targets
    if kind is ast.AugAssign:
        return (node.target,)
    if kind is ast.Delete and len(node.targets) == 1:
        return node.targets
    return ()


def _mentions(node: ast.AST, name: str) -> bool:
    """Whether ``name`` is spelled anywhere in ``node``: as a name, an attribute, a keyword,
    a parameter, a definition, a ``global`` or an import."""
    for inner in ast.walk(node):
        kind = type(inner)
        if kind is ast.alias:
            if name in inner.name.split(".") or inner.asname == name:
                return True
        elif kind is ast.Global or kind is ast.Nonlocal:
            if name in inner.names:
                return True
        elif kind in _IDENTIFIERS and getattr(inner, _IDENTIFIERS[kind]) == name:
            return True
    return False


# The field that spells an identifier, by node class (``_mentions``).
_IDENTIFIERS = {ast.Name: "id", ast.Attribute: "attr", ast.keyword: "arg", ast.arg: "arg",
                ast.FunctionDef: "name", ast.AsyncFunctionDef: "name", ast.ClassDef: "name",
                ast.ExceptHandler: "name"}


def _is_local(expr: Optional[ir.Expr], name: str) -> bool:
    """Whether ``expr`` is the local ``name`` with its incoming value (a parameter)."""
    return isinstance(expr, ir.Opaque) and expr.kind == "local" and expr.text == name


def _leaves(body: Seq[ast.stmt]) -> bool:
    """Whether a block always leaves before its end: it ends with ``return``, ``raise``,
    ``continue`` or ``break`` (what comes after the statement holding it does not run)."""
    return bool(body) and isinstance(body[-1], _LEAVING)


def _reraises(body: Seq[ast.stmt]) -> bool:
    """Whether an ``except`` clause raises (outside functions defined inside it)."""
    stack: List[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Raise):
            return True
        if not isinstance(node, _FUNCTIONS):
            stack.extend(_children(node))
    return False


def _import_bindings(node, module: str, is_package: bool):
    """(local name, binding) pairs for an import statement; "*" for a star import."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname is not None:
                yield alias.asname, ImportBinding(alias.name)
            else:
                top = alias.name.split(".")[0]
                yield top, ImportBinding(top)
        return
    source = resolve_relative(module, is_package, node.level, node.module or "")
    if source is None:
        return
    for alias in node.names:
        if alias.name == "*":
            yield "*", ImportBinding(source)
            return
        yield alias.asname or alias.name, FromImportBinding(source, alias.name)


def extract_module(module: ast.Module, path: str, module_name: str,
                   is_package: bool, code: str) -> ModuleFacts:
    """``code``: the text ``module`` was parsed from."""
    return ModuleExtractor(module, path, module_name, is_package, code).extract()
