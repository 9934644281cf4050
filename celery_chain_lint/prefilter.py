"""Decides, from a file's bytes, how much of it the analysis needs; reads the rest cheaply.

libcst is the analyser's model of the code, and it is slow: parsing, positions and the facts
pass cost about a millisecond a line. Most files of a large codebase never touch Celery, so:

- **full** (the libcst pass of ``facts.extract``): files that import Celery, that make a
  canvas call (``.s(``, ``.si(``, ``.delay(``, ``.apply_async(``), that configure Celery
  (``CELERY_``), that Python cannot decode (the full pass reports them), and, found by a
  fixpoint over the project, files whose import statements name something the project binds
  to a Celery-related object (a task, a task decorator or base class, an app, a canvas, a
  re-export of Celery's API) or a module that binds one;
- **definitions only** (``definitions_facts``): every other file. ``ast`` (fast) finds the
  function bodies, they are elided, and the full pass runs over what remains, so these facts
  hold exactly the full pass's bindings, star imports, signatures, decorators and classes. The
  project loads them lazily, only for the modules that name resolution looks into (a task
  re-exported through a package ``__init__.py`` that never says "task" still resolves), and a
  function's body facts are extracted when something reads them (``BodyOnDemand``: CCL005
  following a task into a helper module that does the network I/O).

Why nothing is missed: what a file contributes beyond name resolution and the bodies read on
demand (tasks, workflows, task decorators and bases, apps and their configuration) always
refers to a Celery object; a Python file can only refer to an object through a name it
imports (the import statement spells the name, or the module that holds it) or by importing
Celery itself. The fixpoint promotes every file whose import statements mention such a name,
until no file is promoted; while it runs, modules left out are opaque (what resolves through
one is unknown until it is promoted). The tests run the whole analysis with and without the
filter and require identical findings. Known limits: dynamic imports (``importlib``,
``__import__``) are invisible to it, as they are to the resolver; when the project is Celery
itself (it holds ``celery``, ``celery.canvas``, ``celery.app.task``...), importing celery is
internal and no reason for the full pass (a canvas call still is); and a file left to the
definitions tier is never parsed in full, so a syntax error in it is not reported (CCL999 is
for files that need analysing).
"""
from __future__ import annotations

import ast
import re
from dataclasses import fields
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import FunctionFacts, ModuleFacts, ValueBinding
from celery_chain_lint.source import undecodable

# Bumped when the scan or the definitions extraction changes meaning (part of the cache key).
PREFILTER_VERSION = 2

# Anywhere in the file: canvas calls and Celery configuration (plain substring searches, which
# run at memory speed; a regular expression over every byte of a large codebase would not).
_SEEDS = (b".s(", b".si(", b".delay(", b".apply_async(", b"CELERY_", b"celeryconfig")
_WORD = re.compile(rb"[A-Za-z_\x80-\xff][\w\x80-\xff]*")


def scan(data: bytes) -> Tuple[bool, FrozenSet[str]]:
    """(whether the file needs the full pass on its own, the words of its import statements).

    An import statement is read as the whole line holding the word ``import`` (so also the
    ``from x`` before it, and code before a ``;``), continued over backslashes and up to the
    closing parenthesis of a parenthesised name list. Over-reading (``important`` in prose)
    only adds words, which only costs time."""
    words: Set[bytes] = set()
    find, length = data.find, len(data)
    position = find(b"import")
    while position != -1:
        start = data.rfind(b"\n", 0, position) + 1
        end = find(b"\n", position)
        end = length if end == -1 else end
        opening = data.find(b"(", position, end)
        if opening != -1 and data.find(b")", opening, end) == -1:
            closing = find(b")", opening)
            end = length if closing == -1 else closing
        while end < length:  # a backslash continues the statement on the next line
            last = end - 1 if data[end - 1:end] == b"\r" else end
            if data[last - 1:last] != b"\\":
                break
            following = find(b"\n", end + 1)
            end = length if following == -1 else following
        words.update(_WORD.findall(data, start, end))
        position = find(b"import", end)
    names = frozenset(word.decode("utf-8", "replace") for word in words)
    # A file Python could not even decode (binary, UTF-16, a wrong coding declaration, NUL
    # bytes) goes to the full pass, which reports it (CCL999): cheap to find, and worth saying.
    seed = "celery" in names or any(marker in data for marker in _SEEDS) or undecodable(data)
    return seed, names


# ---- which names are Celery-related, once the full-pass modules are known ----


def relevant_words(project) -> FrozenSet[str]:
    """Names an importing file must spell to reach something Celery-related in ``project``:
    module-level names bound to such objects (a task, a task decorator or base class, an app,
    one of Celery's objects, a variable or a function building a canvas from those), and the
    last component of the modules holding them (``from . import tasks``)."""
    from celery_chain_lint.index.symbols import (
        AppSym,
        ClassSym,
        DecoratorSym,
        External,
        FunctionSym,
        InstanceSym,
        MemberSym,
        TaskSym,
    )

    resolver = project.resolver
    relevant_names: Dict[str, Set[str]] = {module: set() for module in project.modules}

    def relevant(symbol) -> bool:
        if isinstance(symbol, (TaskSym, DecoratorSym, AppSym, MemberSym)):
            return True
        if isinstance(symbol, External):
            return symbol.qualname == "celery" or symbol.qualname.startswith("celery.")
        if isinstance(symbol, InstanceSym):
            symbol = symbol.cls
        if isinstance(symbol, (FunctionSym, ClassSym)):
            # A task decorator or base class defined in the project: relevant where defined.
            return symbol.qualname in relevant_names.get(symbol.module, ())
        return False

    def mentions(expr, names: Set[str]) -> bool:
        return expr is not None and any(isinstance(node, ir.Name) and node.id in names
                                        for node in ir.walk(expr))

    symbols: Dict[Tuple[str, str], object] = {}
    # Per module: what each of its module-level names is built from (a variable's value, a
    # function's return values and canvas statements, a class's bases and canvas statements).
    built: Dict[str, Dict[str, List]] = {}
    for module, facts in project.modules.items():
        parts: Dict[str, List] = {}
        for name, binding in facts.bindings.items():
            if isinstance(binding, ValueBinding):
                parts.setdefault(name, []).append(binding.expr)
        for root in facts.roots:
            if root.scope:
                parts.setdefault(root.scope.split(".")[0], []).append(root.expr)
        for qualname, function in facts.functions.items():
            if "." not in qualname:
                parts.setdefault(qualname, []).extend(value for _, value in function.returns)
        for qualname, cls in facts.classes.items():
            if "." not in qualname:
                parts.setdefault(qualname, []).extend(cls.bases)
        built[module] = {name: exprs for name, exprs in parts.items() if name in facts.bindings}
    changed = True
    while changed:  # across modules: a decorator defined in one, used in another
        changed = False
        for module, facts in project.modules.items():
            local = relevant_names[module]
            for name in facts.bindings:
                if name in local:
                    continue
                key = (module, name)
                if key not in symbols:
                    try:
                        symbols[key] = resolver.lookup(module, name)
                    except RecursionError:
                        symbols[key] = None
                if symbols[key] is None or relevant(symbols[key]) or any(
                        mentions(expr, local) for expr in built[module].get(name, ())):
                    local.add(name)
                    changed = True
    # A module is worth naming when it binds relevant names, or re-exports a module that does.
    modules = {module for module, names in relevant_names.items() if names}
    changed = True
    while changed:
        changed = False
        for module, facts in project.modules.items():
            if module not in modules and any(source in modules for source in facts.star_imports):
                modules.add(module)
                changed = True
    words: Set[str] = set()
    for names in relevant_names.values():
        words |= names
    for module in modules:
        words.add(module.rsplit(".", 1)[-1])
    return frozenset(words)


# ---- modules the filter left out, loaded when name resolution looks into them ----


class ModuleTable(dict):
    """The project's modules: iterating yields the fully analysed ones; looking a module up
    (``in``, ``get``, ``[]``) also finds the others, loaded on first use by ``loader``."""

    def __init__(self, eager: Dict[str, ModuleFacts],
                 loader: Callable[[str], Optional[ModuleFacts]], lazy_names: Iterable[str]):
        super().__init__(eager)
        self._loader = loader
        self._lazy_names = set(lazy_names) - set(eager)
        self._loaded: Dict[str, Optional[ModuleFacts]] = {}
        self.loaded_count = 0

    def _lazy(self, name) -> Optional[ModuleFacts]:
        if name not in self._lazy_names:
            return None
        if name not in self._loaded:
            facts = self._loader(name)
            if facts is None:  # does not parse: present (it is a module), binding nothing
                facts = ModuleFacts(path="", module=name, is_package=False)
            self._loaded[name] = facts
            self.loaded_count += 1
        return self._loaded[name]

    def __contains__(self, name) -> bool:
        # Known without reading it: a module left out that does not parse is present, empty.
        return dict.__contains__(self, name) or name in self._lazy_names

    def __getitem__(self, name) -> ModuleFacts:
        try:
            return dict.__getitem__(self, name)
        except KeyError:
            facts = self._lazy(name)
            if facts is None:
                raise
            return facts

    def get(self, name, default=None):
        facts = dict.get(self, name)
        if facts is None:
            facts = self._lazy(name)
        return default if facts is None else facts


# ---- the definitions tier: the full pass over a copy whose function bodies are elided ----


def definitions_facts(data: bytes, path: str, module: str,
                      is_package: bool) -> Optional[ModuleFacts]:
    """The module's facts without function bodies; None when it cannot be analysed.

    Every function body is replaced by ``...`` on its first line and blank lines after it
    (``ast`` finds them), so lines and columns stay those of the file, and the full pass runs on
    what remains: bindings, decorators, signatures and class definitions are exactly the full
    pass's, at a fraction of its cost."""
    try:
        elided, ends = skeleton(data)
    except (SyntaxError, ValueError, UnicodeDecodeError, LookupError, RecursionError,
            MemoryError, TypeError):
        return None
    try:
        from celery_chain_lint.facts.extract import extract_module
        from celery_chain_lint.source import parse, run_deep

        facts = run_deep(lambda: extract_module(parse(elided), path, module, is_package))
    except Exception:  # the full pass reports problems, not this one
        return None
    for table in (facts.functions, facts.classes):
        for definition in table.values():
            span = definition.span
            end = ends.get((span.line, span.column)) if span is not None else None
            if end is not None:
                definition.span = ir.Span(span.line, span.column, *end)
    return facts


def skeleton(data: bytes, keep_line: Optional[int] = None
             ) -> Tuple[bytes, Dict[Tuple[int, int], Tuple[int, int]]]:
    """``data`` with function bodies elided (except the function whose ``def`` is on
    ``keep_line``), and the true end (line, 1-based column) of every function and class, by
    the (line, column) where it starts."""
    tree = ast.parse(data)
    lines = data.splitlines(keepends=True)
    text_lines: Dict[int, str] = {}

    def column(line: int, offset: int) -> int:
        raw = lines[line - 1] if 0 < line <= len(lines) else b""
        if raw.isascii():
            return offset + 1
        if line not in text_lines:
            text_lines[line] = _decode_line(data, raw)
        return len(text_lines[line].encode("utf-8")[:offset].decode("utf-8", "replace")) + 1

    ends: Dict[Tuple[int, int], Tuple[int, int]] = {}
    stack: List[ast.AST] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            ends[(node.lineno, column(node.lineno, node.col_offset))] = (
                node.end_lineno, column(node.end_lineno, node.end_col_offset))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.lineno == keep_line:
                continue
            first = node.body[0]
            raw = lines[first.lineno - 1]
            indent = len(raw) - len(raw.lstrip(b" \t"))
            if first.col_offset != indent or first.lineno == node.lineno:
                continue  # ``def f(): return 1``: nothing worth eliding
            for number in range(first.lineno, node.end_lineno + 1):
                raw = lines[number - 1]
                ending = raw[len(raw.rstrip(b"\r\n")):]
                lines[number - 1] = (raw[:indent] + b"..." if number == first.lineno
                                     else b"") + ending
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, ast.AST)]))
    return b"".join(lines), ends


_SIGNATURE_FIELDS = frozenset({"qualname", "name", "span", "name_span", "params", "decorators",
                               "is_async", "is_method"})


class BodyOnDemand(FunctionFacts):
    """A function read by the definitions tier. What its body holds (calls, returns, and any
    body fact added later) is extracted by the full pass on first use: rules that follow calls
    into helper functions (a task calling ``net.fetch()``, which does the network I/O) see
    exactly what they would without the pre-filter."""

    def __getattribute__(self, name):
        if name not in _SIGNATURE_FIELDS and not name.startswith("_"):
            state = object.__getattribute__(self, "__dict__")
            load = state.pop("_load_body", None)
            if load is not None:
                complete = load()
                if complete is not None:
                    for field in fields(FunctionFacts):
                        if field.name not in _SIGNATURE_FIELDS:
                            state[field.name] = getattr(complete, field.name)
        return object.__getattribute__(self, name)


# Bodies asked of one module, one function at a time (a parse of the module without the other
# bodies), before the whole module is parsed once instead.
PARTIAL_BODIES = 2


def with_bodies_on_demand(facts: ModuleFacts, load: Callable[[], Optional[ModuleFacts]],
                          load_function: Optional[Callable[[str, int], Optional[FunctionFacts]]]
                          = None) -> ModuleFacts:
    """``facts`` (of the definitions tier) whose functions fetch their bodies when asked: from
    ``load_function(qualname, line)`` for the first few, then from ``load`` (the module's
    full-pass facts, computed once)."""
    complete: List[Optional[ModuleFacts]] = []
    partial = [0]

    def body(qualname: str, line: int) -> Optional[FunctionFacts]:
        if not complete and load_function is not None and partial[0] < PARTIAL_BODIES:
            partial[0] += 1
            found = load_function(qualname, line)
            if found is not None:
                return found
        if not complete:
            complete.append(load())
        return complete[0].functions.get(qualname) if complete[0] is not None else None

    for qualname, function in list(facts.functions.items()):
        proxy = BodyOnDemand(**{f.name: getattr(function, f.name) for f in fields(function)})
        object.__getattribute__(proxy, "__dict__")["_load_body"] = (
            lambda qualname=qualname, line=function.span.line: body(qualname, line))
        facts.functions[qualname] = proxy
    return facts


def function_facts(data: bytes, path: str, module: str, is_package: bool, qualname: str,
                   line: int) -> Optional[FunctionFacts]:
    """The full pass's facts of one function (the one whose ``def`` is on ``line``), from the
    module with every other function body elided."""
    try:
        elided, ends = skeleton(data, keep_line=line)
    except (SyntaxError, ValueError, UnicodeDecodeError, LookupError, RecursionError,
            MemoryError, TypeError):
        return None
    try:
        from celery_chain_lint.facts.extract import extract_module
        from celery_chain_lint.source import parse, run_deep

        facts = run_deep(lambda: extract_module(parse(elided), path, module, is_package))
    except Exception:
        return None
    function = facts.functions.get(qualname)
    if function is None or function.span is None or function.span.line != line:
        return None
    end = ends.get((function.span.line, function.span.column))
    if end is not None:
        function.span = ir.Span(function.span.line, function.span.column, *end)
    return function


def _decode_line(data: bytes, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        import io
        import tokenize

        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return raw.decode(encoding, "replace")
