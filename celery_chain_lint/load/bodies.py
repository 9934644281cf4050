"""Function bodies: which ones the facts pass reads now, and the others on demand.

The facts pass (``facts/extract.py``) costs several times what ``ast.parse`` does. Most
function bodies, even in a file full of Celery calls, hold nothing that the rules look for in
every function: so ``ast`` finds the functions, the bodies that hold nothing read eagerly are
replaced by a statement that does nothing (lines and columns of the rest stay those of the
file), their headers by the bare parameters, and the facts pass reads what remains: the file's
own tree with those parts set aside while it reads (``SetAside``; the skeleton's text is what
the definitions tier checks for nesting, never parsed again). An elided
function keeps its signature, decorators and span, and records what its body spells and where
it is (``FunctionFacts.elided``); its body facts (calls, returns...) are extracted on first use
(``BodyOnDemand``) by the same pass over the function alone, placed at its own lines inside
stand-ins for the statements around it.

Which bodies are read now is ``facts.roots.body_reading``: those that may be tasks or
configure an app. A body that may hold a workflow root (``.s``, ``.delay``, ``group``, ``.set``,
``|``...) or defines a class or a decorated function is read once the project is known, if it
spells a Celery-related name (``function_roots``) or, for a rule that reads them
(``Rule.reads_task_methods_on_functions``), calls a task method on what may be a plain function; the others are marked ``left_unread`` and never parsed (a test
suite's ``self.add.s(1)``, a regular expression's ``match.group(1)``). A body building canvases
from what its module imports from Celery, or from the modules near it, is read now all the
same (``roots.likely_names``): it will most likely turn out relevant, and read with its file it
costs no parse of its own. Rules that look at the bodies of all functions ask
``FunctionFacts.may_use_attribute``, ``may_mention`` or ``may_return_value`` first (the rules
and the pre-filter's fixpoint): a body that cannot hold what they seek is never parsed.

Class bodies are read the same way: their simple statements give the class's ``attributes``
and nothing else, and only the classes that may be tasks or configuration objects are asked
for them, so they are elided too (Django's field definitions are a quarter of what an
application's Celery modules hold) and read on first use (``AttributesOnDemand``). A module
read for its definitions only leaves its module-level values until a name is resolved
(``ValueOnDemand``).

The tests run the analysis with and without elision and require identical facts and findings.
"""
from __future__ import annotations

import ast
import re
from dataclasses import fields
from typing import Callable, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple, Union

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (ClassFacts, ElidedBody, ElidedStatements,
                                          ElidedValue, FunctionFacts, ModuleFacts, Root,
                                          ValueBinding)
from celery_chain_lint.facts.roots import (IF_RELEVANT, LATER, NOW, Body, body_reading,
                                          builds_canvases, likely_names, read_body)

Ends = Dict[Tuple[int, int], Tuple[int, int]]
# When to read a function's body (``roots.NOW``...), given the function and what its body
# spells and holds (``roots.read_body``).
Keep = Callable[[ast.AST, Body], int]
Elided = Union[ElidedBody, ElidedStatements, ElidedValue]


# ---- the skeleton: the file with some bodies elided ----


def skeleton(data: bytes, keep: Optional[Keep] = None, tree: Optional[ast.Module] = None,
             set_aside: Optional[List[ast.AST]] = None
             ) -> Tuple[bytes, Ends, Dict[Tuple[int, int], Elided]]:
    """``data`` with the bodies of the functions ``keep`` refuses (all without ``keep``)
    elided, and the simple statements of class bodies outside kept functions; the true end
    (line, 1-based column) of every function and class by the (line, column) where it starts;
    and each elided body or class's statements, by the same key. Kept functions are kept
    whole. ``tree``: ``ast.parse(data)``, when the caller has it. ``set_aside``: filled with
    the nodes of ``tree`` whose text was elided (``SetAside`` reads the tree without them)."""
    tree = tree or ast.parse(data)
    lines = data.splitlines(keepends=True)
    text_lines: Dict[int, str] = {}

    def column(line: int, offset: int) -> int:
        raw = lines[line - 1] if 0 < line <= len(lines) else b""
        if raw.isascii():
            return offset + 1
        if line not in text_lines:
            text_lines[line] = _decode_line(data, raw)
        return len(text_lines[line].encode("utf-8")[:offset].decode("utf-8", "replace")) + 1

    ends: Ends = {}
    elided: Dict[Tuple[int, int], Elided] = {}
    if keep is None:
        for value in _elide_values(tree, lines, set_aside):  # (line, 0): never a definition's
            elided[(value.first_line, 0)] = value  # start
    Header = Tuple[int, str, str]
    stack: List[Tuple[ast.AST, Tuple[Header, ...]]] = [(n, ()) for n in reversed(tree.body)]
    while stack:
        node, enclosing = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = (node.lineno, column(node.lineno, node.col_offset))
            ends[start] = (node.end_lineno, column(node.end_lineno, node.end_col_offset))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # Without ``keep`` every body goes (the definitions tier): what a body spells is
            # then not worth an ``ast`` walk, nothing asks it of modules left out.
            body = read_body(node) if keep is not None else None
            reading = keep(node, body) if keep is not None else LATER
            if reading != NOW:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if _elide(node, lines):
                    if set_aside is not None:
                        set_aside.append(node)
                    classes = [h[len("class "):-1] for _, _, h in enclosing if h != "if 1:"]
                    elided[start] = ElidedBody(
                        names=body and body.names, attributes=body and body.attributes,
                        first_line=first, last_line=node.end_lineno, enclosing=enclosing,
                        may_hold_roots=reading == IF_RELEVANT,
                        qualname=".".join(classes + [node.name]),
                        receivers=body and body.receivers,
                        returns_value=body and body.returns_value)
            continue
        if hasattr(node, "lineno"):  # not a ``case`` clause: ``match`` stands for it
            raw = lines[node.lineno - 1]
            indent = _decode_line(data, raw[:len(raw) - len(raw.lstrip(b" \t\f"))])
            # ``elif``, ``else`` and ``except`` clauses continue the statement that holds them.
            if not enclosing or len(indent) > len(enclosing[-1][1]):
                header = f"class {node.name}:" if isinstance(node, ast.ClassDef) else "if 1:"
                enclosing = enclosing + ((node.lineno, indent, header),)
            if isinstance(node, ast.ClassDef):
                ranges = _elide_class_statements(node, lines)
                if ranges:
                    elided[start] = ElidedStatements(ranges, enclosing)
                    if set_aside is not None:
                        set_aside.append(node)
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                stack.extend((c, enclosing) for c in reversed(children) if isinstance(c, ast.AST))
    return b"".join(lines), ends, elided


class SetAside:
    """The parts of a tree the skeleton elided, taken out while the facts pass reads it, and
    put back: an elided body reads as nothing (its stand-in, ``...`` or a string, holds
    nothing the pass records), a class's simple statements as nothing (their stand-ins are
    not attributes), a module-level value as ``...``."""

    def __init__(self, nodes: List[ast.AST]) -> None:
        self.nodes = nodes
        self.saved: List[Tuple[ast.AST, str, object]] = []

    def __enter__(self) -> None:
        for node in self.nodes:
            if isinstance(node, ast.ClassDef):
                kept = [s for s in node.body if isinstance(s, _COMPOUND)]
                self._replace(node, "body", kept)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                self._replace(node, "value", ast.copy_location(ast.Constant(...), node.value))
            else:
                self._replace(node, "body", [])

    def __exit__(self, *exc_info) -> None:
        for node, name, value in reversed(self.saved):
            setattr(node, name, value)
        self.saved.clear()

    def _replace(self, node: ast.AST, name: str, value: object) -> None:
        self.saved.append((node, name, getattr(node, name)))
        setattr(node, name, value)


def _elide(function: ast.AST, lines: List[bytes]) -> bool:
    """Replace the body, in ``lines``, by one statement over the same lines."""
    first = function.body[0]
    # A decorated first statement starts at its first decorator, not at ``def``.
    start = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", ())])
    raw = lines[start - 1]
    indent = len(raw) - len(raw.lstrip(b" \t"))
    if first.col_offset != indent or start == function.lineno:
        return False  # ``def f(): return 1``: nothing worth eliding
    _stand_in(lines, start, function.end_lineno, raw[:indent])
    _compact_signature(function, lines, start)
    return True


def _stand_in(lines: List[bytes], first: int, last: int, indent: bytes) -> None:
    """Replace lines ``first`` to ``last`` by one statement over the same lines: ``...``, or
    an empty string literal (blank lines would be read one by one)."""
    for number in range(first, last + 1):
        raw = lines[number - 1]
        lines[number - 1] = raw[len(raw.rstrip(b"\r\n")):]
    if first == last:
        lines[first - 1] = indent + b"..." + lines[first - 1]
    else:
        lines[first - 1] = indent + b'"""' + lines[first - 1]
        lines[last - 1] = b'"""' + lines[last - 1]


_DEF = re.compile(rb"[ \t\f]*(?:async[ \t\f]+)?def[ \t\f]+\w+[ \t\f]*\(")


def _compact_signature(function: ast.AST, lines: List[bytes], body: int) -> None:
    """Rewrite an elided function's header, in ``lines``, as its parameters alone on the
    ``def`` line (``def f(self, x=..., *, y):``): the facts keep only their names, kinds and
    whether they have a default, and black's one-parameter-a-line headers, annotations and
    defaults were a fifth of what the facts pass read of an application's Celery modules. The
    name keeps its place; left as it is when the header does not read plainly."""
    number = function.lineno
    raw = lines[number - 1]
    header = _DEF.match(raw)
    rendered = _parameters(function.args)
    if header is None or rendered is None:
        return
    ending = raw[len(raw.rstrip(b"\r\n")):]
    lines[number - 1] = header.group() + rendered.encode() + b"):" + ending
    for other in range(number + 1, body):
        raw = lines[other - 1]
        lines[other - 1] = raw[len(raw.rstrip(b"\r\n")):]


def _parameters(arguments: ast.arguments) -> Optional[str]:
    """``arguments`` as a parameter list without annotations, each default ``...``; None
    when a name is not ASCII (the line is in the file's own encoding)."""
    positional = arguments.posonlyargs + arguments.args
    first_default = len(positional) - len(arguments.defaults)
    parts = []
    for index, argument in enumerate(positional):
        parts.append(argument.arg + ("=..." if index >= first_default else ""))
        if index + 1 == len(arguments.posonlyargs):
            parts.append("/")
    if arguments.vararg is not None:
        parts.append("*" + arguments.vararg.arg)
    elif arguments.kwonlyargs:
        parts.append("*")
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
        parts.append(argument.arg + ("=..." if default is not None else ""))
    if arguments.kwarg is not None:
        parts.append("**" + arguments.kwarg.arg)
    text = ", ".join(parts)
    return text if text.isascii() else None


# Statements with a body of their own: a class's other statements are simple (``x = 1``).
_COMPOUND = tuple(getattr(ast, name) for name in (
    "FunctionDef", "AsyncFunctionDef", "ClassDef", "If", "For", "AsyncFor", "While", "With",
    "AsyncWith", "Try", "TryStar", "Match") if hasattr(ast, name))


def _elide_class_statements(cls: ast.ClassDef, lines: List[bytes]) -> Tuple[Tuple[int, int], ...]:
    """Replace, in ``lines``, each run of simple statements of a class body by one statement
    that binds nothing: the extractor reads only attributes from them (Django's field
    definitions, a form's widgets), and only the classes that may be tasks or configuration
    are ever asked for theirs. The runs' line ranges."""
    first = cls.body[0]
    raw = lines[first.lineno - 1]
    indent = raw[:len(raw) - len(raw.lstrip(b" \t"))]
    if first.col_offset != len(indent):
        return ()  # ``class A: x = 1``: the body shares the header's line
    ranges: List[Tuple[int, int]] = []
    for statement in cls.body:
        if isinstance(statement, _COMPOUND):
            continue
        if ranges and statement.lineno <= ranges[-1][1]:  # ``a = 1; b = 2``
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], statement.end_lineno))
        else:
            ranges.append((statement.lineno, statement.end_lineno))
    for first_line, last_line in ranges:
        _stand_in(lines, first_line, last_line, indent)
    return tuple(ranges)


def _elide_values(tree: ast.Module, lines: List[bytes],
                  set_aside: Optional[List[ast.AST]] = None) -> List[ElidedValue]:
    """Replace, in ``lines``, the value of each module-level ``name = value`` statement alone
    on its lines whose name nothing else at module level binds, by ``...``; where each was.
    For the definitions tier: only the names another module resolves are ever read (pretix's
    settings module holds a 3,000-line dictionary)."""
    bound: Dict[str, int] = {}
    for statement in tree.body:
        for name in _names_bound(statement):
            bound[name] = bound.get(name, 0) + 1
    found = []
    previous_end = 0
    for index, statement in enumerate(tree.body):
        following = tree.body[index + 1].lineno if index + 1 < len(tree.body) else None
        alone = statement.lineno > previous_end and (
            following is None or following > statement.end_lineno)
        previous_end = statement.end_lineno
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target = statement.target
        else:
            continue
        if alone and isinstance(target, ast.Name) and bound[target.id] == 1 \
                and target.id.isascii() and statement.col_offset == 0:
            _stand_in(lines, statement.lineno, statement.end_lineno,
                      target.id.encode() + b" = ")
            found.append(ElidedValue(target.id, statement.lineno, statement.end_lineno))
            if set_aside is not None:
                set_aside.append(statement)
    return found


def _names_bound(statement: ast.stmt) -> List[str]:
    """The names a module-level statement may bind (more is harmless: fewer values are left
    for later)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    names = []
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.append(node.id)
        elif isinstance(node, ast.alias):
            names.append((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            names.append(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.append(node.rest)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
    return names


def elided_facts(data: bytes, path: str, module: str, is_package: bool,
                 keep: Optional[Keep] = None, nesting_checked: bool = False,
                 tree: Optional[ast.Module] = None) -> ModuleFacts:
    """The facts pass over ``data`` with the bodies ``keep`` refuses elided. Raises what
    ``ast.parse`` or the facts pass raise (call it through ``source.run_deep``)."""
    from celery_chain_lint.facts.extract import extract_module
    from celery_chain_lint.facts.whole_file import add_whole_file_facts
    from celery_chain_lint.load.source import check_nesting, decode

    tree = tree or ast.parse(data)
    set_aside: List[ast.AST] = []
    kept, ends, elided = skeleton(data, keep, tree, set_aside)
    if not nesting_checked:  # what the facts pass reads is what the skeleton holds
        check_nesting(decode(kept).text)
    with SetAside(set_aside):  # the tree of the skeleton, without parsing it again
        facts = extract_module(tree, path, module, is_package, decode(data).text)
    add_whole_file_facts(facts, data, tree)
    for table in (facts.functions, facts.classes):
        for definition in table.values():
            span = definition.span
            if span is None:
                continue
            start = (span.line, span.column)
            end = ends.get(start)
            if end is not None:
                definition.span = ir.Span(span.line, span.column, *end)
            if start in elided:
                definition.elided = elided[start]
    for value in elided.values():
        if isinstance(value, ElidedValue):  # bound to ``...`` in the skeleton: in its place
            facts.bindings[value.name] = value
    # Not looked up by qualname: a function defined twice (``if``/``else``) has roots in both.
    facts.roots_if_relevant = [body for body in elided.values()
                               if isinstance(body, ElidedBody) and body.may_hold_roots]
    return facts


def quiet_bodies_elided(data: bytes, path: str, module: str, is_package: bool,
                        nesting_checked: bool = False,
                        celery_modules: FrozenSet[str] = frozenset(),
                        tree: Optional[ast.Module] = None) -> ModuleFacts:
    """The full pass's facts, the bodies that hold nothing read eagerly left for later.
    ``celery_modules``: the modules whose names likely make a body building canvases relevant
    (``roots.likely_names``): such a body is read now, with the rest of the file, rather than
    alone once the project is known. ``tree``: ``ast.parse(data)``, when the caller has it."""
    tree = tree or ast.parse(data)
    likely = likely_names(tree, module, is_package, celery_modules)

    def keep(function: ast.AST, body: Body) -> int:
        reading = body_reading(function, body)
        if reading == IF_RELEVANT and builds_canvases(body) and not body.names.isdisjoint(likely):
            return NOW
        return reading
    return elided_facts(data, path, module, is_package, keep, nesting_checked, tree)


def definitions_facts(data: bytes, path: str, module: str,
                      is_package: bool) -> Optional[ModuleFacts]:
    """The module's facts with every function body elided (bindings, decorators, signatures
    and classes exactly the full pass's, at a fraction of its cost); None when it cannot be
    analysed: the full pass reports problems, not this one."""
    from celery_chain_lint.load.source import run_deep

    try:
        return run_deep(elided_facts, data, path, module, is_package)
    except Exception:
        return None


# ---- one body, on demand ----


def function_facts(lines: Sequence[str], path: str, module: str, is_package: bool,
                   function: FunctionFacts) -> Optional[FunctionFacts]:
    """The full pass's facts of one elided function, from ``lines`` (``source.split_lines`` of
    the decoded module): the function's own lines, at their own line numbers, inside stand-ins for
    the statements around it (``class Name:``, ``if 1:``), the lines between filled by string
    literals. What a function's facts hold depends on nothing else of the module. None when it
    fails."""
    body = function.elided
    if body is None or body.last_line > len(lines):
        return None
    facts = _fragment_facts(lines, path, module, is_package, body.enclosing,
                            ((body.first_line, body.last_line),))
    found = facts.functions.get(function.qualname) if facts is not None else None
    if found is None or found.span is None or found.span.line != function.span.line:
        return None
    return found


class ReadBody(NamedTuple):
    """What the full pass finds in one elided function body, read alone."""

    roots: List[Root]  # its workflow roots, and those of the functions defined in it
    function: FunctionFacts  # the function's facts, from the same reading (rules match a
    # root with the call it is by identity)
    functions: Dict[str, FunctionFacts]  # the functions and classes defined in it (a task
    classes: Dict[str, ClassFacts]  # defined in a factory), by qualname


def function_roots(lines: Sequence[str], path: str, module: str, is_package: bool,
                   body: ElidedBody) -> Optional[ReadBody]:
    """One elided function body read alone, as ``function_facts`` reads it; None when it
    fails."""
    if body.last_line > len(lines):
        return None
    facts = _fragment_facts(lines, path, module, is_package, body.enclosing,
                            ((body.first_line, body.last_line),))
    function = facts.functions.get(body.qualname) if facts is not None else None
    if function is None:
        return None
    inside, local = body.qualname + ".", body.qualname + ".<locals>."
    return ReadBody([root for root in facts.roots
                     if root.scope == body.qualname or root.scope.startswith(inside)], function,
                    {q: f for q, f in facts.functions.items() if q.startswith(local)},
                    {q: c for q, c in facts.classes.items() if q.startswith(local)})


def with_roots(facts: ModuleFacts, body: ElidedBody, read: ReadBody) -> None:
    """Add what an elided ``body`` holds to ``facts`` where the full pass has it: its roots
    before the roots of the statements after it, the functions and classes it defines before
    those defined after it."""
    index = next((i for i, root in enumerate(facts.roots)
                  if root.expr.span is not None and root.expr.span.line > body.first_line),
                 len(facts.roots))
    facts.roots[index:index] = read.roots
    for table, defined in ((facts.functions, read.functions), (facts.classes, read.classes)):
        if defined and not set(defined) & set(table):
            entries = list(table.items())
            position = next((i for i, (_, definition) in enumerate(entries)
                             if definition.span is not None
                             and definition.span.line > body.last_line), len(entries))
            table.clear()
            table.update(entries[:position] + list(defined.items()) + entries[position:])


def class_attributes(lines: Sequence[str], path: str, module: str, is_package: bool,
                     cls: ClassFacts) -> Optional[Dict[str, ir.Expr]]:
    """The attributes of a class whose simple statements were elided, read as the full pass
    reads them: those statements alone, at their own lines, inside stand-ins for the class and
    the statements around it. None when it fails."""
    statements = cls.elided
    if statements is None or statements.ranges[-1][1] > len(lines):
        return None
    facts = _fragment_facts(lines, path, module, is_package, statements.enclosing,
                            statements.ranges)
    found = facts.classes.get(cls.qualname) if facts is not None else None
    if found is None or found.span is None or found.span.line != cls.span.line:
        return None
    return found.attributes


def module_value(lines: Sequence[str], path: str, module: str, is_package: bool,
                 value: ElidedValue) -> Optional[ir.Expr]:
    """The expression an elided module-level value binds, read alone at its own lines; None
    when it fails."""
    if value.last_line > len(lines):
        return None
    facts = _fragment_facts(lines, path, module, is_package, (),
                            ((value.first_line, value.last_line),))
    binding = facts.bindings.get(value.name) if facts is not None else None
    return binding.expr if isinstance(binding, ValueBinding) else None


def _fragment_facts(lines: Sequence[str], path: str, module: str, is_package: bool,
                    enclosing: Tuple[Tuple[int, str, str], ...],
                    pieces: Sequence[Tuple[int, int]]) -> Optional[ModuleFacts]:
    """The facts of ``pieces`` (first and last line) of ``lines`` at their own line numbers,
    inside stand-ins for ``enclosing``; None when they do not parse."""
    from celery_chain_lint.facts.extract import extract_module
    from celery_chain_lint.load.source import parse_text, run_deep

    parts: List[str] = []
    line = 1
    for at, indent, header in enclosing + ((pieces[0][0], "", ""),):
        if not header:
            original = lines[at - 1]
            indent = original[:len(original) - len(original.lstrip(" \t\f"))]
        if at > line:  # a string literal over the lines in between
            parts.append(indent + '"""' + "\n" * (at - line - 1) + '"""\n')
        parts.append(indent + header + "\n" if header else "")
        line = at + 1
    line = pieces[0][0]
    for first, last in pieces:
        parts.append("\n" * (first - line) + "\n".join(lines[first - 1:last]) + "\n")
        line = last + 1
    code = "".join(parts)
    try:
        return run_deep(lambda: extract_module(parse_text(code), path, module, is_package, code))
    except Exception:
        return None


# ---- bodies on demand ----

# Read without loading the body: the fields the eliding pass fills, and the methods that ask
# what the body spells or hand it its facts.
_WITHOUT_BODY = frozenset({"qualname", "name", "span", "name_span", "params", "decorators",
                           "is_async", "is_method", "elided", "left_unread", "may_mention",
                           "may_return_value", "may_use_attribute", "give_body"})


class BodyOnDemand(FunctionFacts):
    """A function whose body was elided. What its body holds (calls, returns, and any body
    fact added later) is extracted on first use: rules that follow calls into helper functions
    (a task calling ``net.fetch()``, which does the network I/O) see exactly what they would if
    the body had been read with the rest."""

    def __getattribute__(self, name):
        if name not in _WITHOUT_BODY and not name.startswith("_"):
            state = object.__getattribute__(self, "__dict__")
            load = state.pop("_load_body", None)
            if load is not None:
                complete = load()
                if complete is not None:
                    self.give_body(complete)
        return object.__getattribute__(self, name)

    def __reduce__(self):  # pickled as the plain facts it holds, without loading the body
        state = object.__getattribute__(self, "__dict__")
        return FunctionFacts, tuple(state[f.name] for f in fields(FunctionFacts))

    def give_body(self, complete: FunctionFacts) -> None:
        """Take the body facts of ``complete`` (read for its roots) instead of reading it."""
        state = object.__getattribute__(self, "__dict__")
        state.pop("_load_body", None)
        for field in fields(FunctionFacts):
            if field.name not in _WITHOUT_BODY:
                state[field.name] = getattr(complete, field.name)


class AttributesOnDemand(ClassFacts):
    """A class whose simple statements were elided: its ``attributes`` are read on first use
    (a task class's options, a configuration object's settings)."""

    def __getattribute__(self, name):
        if name == "attributes":
            state = object.__getattribute__(self, "__dict__")
            load = state.pop("_load_attributes", None)
            if load is not None:
                found = load()
                if found is not None:
                    state["attributes"] = found
        return object.__getattribute__(self, name)

    def __reduce__(self):  # pickled as the plain facts it holds, without reading them
        state = object.__getattribute__(self, "__dict__")
        return ClassFacts, tuple(state[f.name] for f in fields(ClassFacts))


class ValueOnDemand(ValueBinding):
    """A module-level value the definitions tier left for later (``ElidedValue``): its
    ``expr`` is read on first use."""

    def __init__(self, elided: ElidedValue, load: Callable[[ElidedValue], Optional[ir.Expr]]):
        object.__setattr__(self, "_elided", elided)
        object.__setattr__(self, "_load", load)

    def __getattribute__(self, name):
        if name == "expr":
            state = object.__getattribute__(self, "__dict__")
            if "expr" not in state:
                found = state["_load"](state["_elided"])
                # Unreadable after all: a value the analyser does not know.
                state["expr"] = found if found is not None else ir.Opaque(kind="unread")
        return object.__getattribute__(self, name)

    def __reduce__(self):  # pickled as what it stands for, without reading it
        elided = object.__getattribute__(self, "_elided")
        return ElidedValue, tuple(getattr(elided, f.name) for f in fields(ElidedValue))

    def __repr__(self) -> str:  # as the binding the full pass makes
        return repr(ValueBinding(self.expr))


def with_bodies_on_demand(facts: ModuleFacts,
                          load: Callable[[FunctionFacts], Optional[FunctionFacts]],
                          load_attributes: Callable[[ClassFacts], Optional[Dict[str, ir.Expr]]]
                          = lambda cls: None,
                          load_value: Callable[[ElidedValue], Optional[ir.Expr]]
                          = lambda value: None) -> ModuleFacts:
    """``facts`` whose elided functions fetch their bodies from ``load(function)``, whose
    classes with elided statements their attributes from ``load_attributes(cls)``, and whose
    elided module-level values their expression from ``load_value(value)``, when asked."""
    for name, binding in list(facts.bindings.items()):
        if isinstance(binding, ElidedValue):
            facts.bindings[name] = ValueOnDemand(binding, load_value)
    for qualname, function in list(facts.functions.items()):
        if function.elided is None or isinstance(function, BodyOnDemand):
            continue  # read with the rest
        proxy = BodyOnDemand(**{f.name: getattr(function, f.name) for f in fields(function)})
        object.__getattribute__(proxy, "__dict__")["_load_body"] = (
            lambda function=function: load(function))
        facts.functions[qualname] = proxy
    for qualname, cls in list(facts.classes.items()):
        if cls.elided is None or isinstance(cls, AttributesOnDemand):
            continue
        proxy = AttributesOnDemand(**{f.name: getattr(cls, f.name) for f in fields(cls)})
        object.__getattribute__(proxy, "__dict__")["_load_attributes"] = (
            lambda cls=cls: load_attributes(cls))
        facts.classes[qualname] = proxy
    return facts


def _decode_line(data: bytes, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        import io
        import tokenize

        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return raw.decode(encoding, "replace")
