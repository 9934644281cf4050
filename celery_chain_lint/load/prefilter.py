"""Decides, from a file's bytes, how much of it the analysis needs; reads the rest cheaply.

The facts pass is the analyser's model of the code, and it is not free: parsing and the facts
cost about 15 microseconds a line. Most files of a large codebase never touch Celery, so:

- **full** (the facts pass of ``facts.extract``, quiet function bodies left for later:
  ``bodies.py``): files that import Celery, that make a canvas call (``.s(``, ``.si(``,
  ``.delay(``, ``.apply_async(``), that decorate a function like a task or call ``.task(``
  (``app.task(fetch)`` in a factory given the app), that Python cannot decode (the full pass reports them),
  and, found by a fixpoint over the project, files that import something the project binds
  to a Celery-related object (a task, a task decorator or base class, an app, a canvas, a
  re-export of Celery's API) or a module that binds one;
- **definitions only** (``bodies.definitions_facts``): every other file. ``ast`` (fast) finds the
  function bodies, they are elided, and the full pass runs over what remains, so these facts
  hold exactly the full pass's bindings, star imports, signatures, decorators and classes. The
  project loads them lazily, only for the modules that name resolution looks into (a task
  re-exported through a package ``__init__.py`` that never says "task" still resolves), and a
  function's body facts are extracted when something reads them (``BodyOnDemand``: a rule
  following a task into a helper module that does the network I/O).

Why nothing is missed: what a file contributes beyond name resolution and the bodies read on
demand (tasks, workflows, task decorators and bases, apps and their configuration) always refers
to a Celery object; a Python file can only refer to an object through a name it imports or by
importing Celery itself. ``from m import a`` gives the file ``a`` and nothing else of ``m``;
``import a.b`` gives it ``a``, ``a.b`` and what they hold. From those the resolver reaches their
values and, for modules, their attributes, and a function's return values (a decorator factory),
never what else a function does nor a class's attributes (``index/resolver.py``). So the
fixpoint promotes every file that imports a relevant name from the module binding it (or
re-exporting it with a star import), a module binding one (``from . import tasks``; any module
``import a.b`` names), or anything with a star import from such a module; an import statement
not alone on its line (``x = 1; import a``) counts by its words, which must spell a relevant
name or the last component of such a module. It runs until no file is promoted; meanwhile,
modules left out are opaque (what resolves through one is unknown until it is promoted). The
tests run the whole analysis with and without the filter and require identical findings. Known
limits: dynamic imports (``importlib``, ``__import__``) are invisible to it, as they are to the
resolver, and so is a module reached as an attribute of a package imported for another of its
modules (``import a.b`` then ``a.c.task``, which Python finds only if something else imported
``a.c``); when the project is Celery itself (it holds ``celery``, ``celery.canvas``,
``celery.app.task``...), importing celery inside its own package is internal and no reason for
the full pass (a canvas call still is; its examples and tests are read as users' code is); and
a file left to the definitions tier is never parsed in full, so a syntax
error in it is not reported (CCL999 is for files that need analysing).
"""
from __future__ import annotations

import re
from typing import Callable, Dict, FrozenSet, Iterable, List, NamedTuple, Optional, Set, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (ImportBinding, ModuleFacts, ValueBinding,
                                          resolve_relative)
from celery_chain_lint.load.source import undecodable

# Anywhere in the file, the methods called (``.name(``) that make it worth the full pass, all
# found in one pass of _METHOD_CALL below: canvas calls. Configuration modules (Django settings
# with ``CELERY_*`` names, a ``celeryconfig``) are named by the app, and read lazily by name
# like any module (index/apps.py).
_CANVAS_CALLS = (b"s", b"si", b"delay", b"apply_async")
# attrs' classic class decorator, ``@attr.s(auto_attribs=True)`` (openedx/credentials): no
# signature decorates a class. A file whose every ``.s(`` is one is not a canvas call.
_ATTRS_DECORATOR = b"@attr.s("
# What only a Celery app is asked: the module holding an app whose class it loads at run time
# (``import_string(...)(main=...)``) names no Celery object, yet it is the app's
# (index/resolver.py, ``Resolver.app_by_its_calls``).
_APP_CALLS = (b"config_from_object", b"autodiscover_tasks")
# Libraries whose objects make and keep a Celery app (index/symbols.py, CELERY_EXTENSIONS).
CELERY_EXTENSION_MODULES = frozenset({"flask_celeryext"})
# A function decorated like a task (``@app.task``, ``@shared_task``, ``@ext.celery.task(...)``):
# read in full even when the file names no Celery object, so that the coverage counts it and
# says when its app cannot be followed.
# (Not anchored at the line's start: a pattern starting with "@" is found fast; a matrix
# product ``a @ b.task`` only costs a parse.)
_TASK_DECORATOR = re.compile(rb"@[ \t]*(?:\w+[ \t]*\.[ \t]*)*(?:shared_)?task\b")
# A task decorator applied by a call (``app.task(fetch)``, ``app.task(name=...)(fetch)``), in a
# factory given the app (index/factories.py): read in full for the same reason.
_TASK_APPLIED = b"task"
# Every call of those methods, in one pass: a third of the time of a substring search per method
# (weblate: 11 ms against 31 ms), and as exact: an occurrence starts with "." and ends with "(",
# with only a name between, so no two overlap and none is missed.
_METHOD_CALL = re.compile(
    rb"\.(" + b"|".join(_CANVAS_CALLS + _APP_CALLS + (_TASK_APPLIED,)) + rb")\(")
_NAME = rb"[A-Za-z_\x80-\xff][\w\x80-\xff]*"
_WORD = re.compile(_NAME)
_DOTTED = _NAME + rb"(?:\s*\.\s*" + _NAME + rb")*"
# An import statement alone on its line (continued over backslashes or parentheses):
# ``from <dots><module> import <names>``, or ``import <dotted> [as <name>], ...``.
_FROM_IMPORT = re.compile(
    rb"[ \t]*from[ \t]+(\.*)[ \t]*(" + _DOTTED + rb")?[ \t]+import\b([^;]*)\Z", re.S)
_PLAIN_IMPORT = re.compile(rb"[ \t]*import[ \t]+([^;]*)\Z", re.S)
_IMPORTED_MODULE = re.compile(rb"\s*(" + _DOTTED + rb")(?:\s+as\s+" + _NAME + rb")?\s*\Z")
# ``import`` where a statement may start: ``try: import a``, ``x = 1; from b import c``.
_IMPORT_KEYWORD = re.compile(rb"(?:^|[;:])[ \t]*(?:from\b[^\n;:]*[ \t])?import\b", re.M)
_CONTINUATION = re.compile(rb"\\\r?\n|#[^\n]*")

# (dots, module as written, the names imported; None for ``import <module>``):
# ``from ..a import b as c`` -> (2, "a", ("b", "as", "c")); ``import a.b`` -> (0, "a.b", None).
Import = Tuple[int, str, Optional[Tuple[str, ...]]]


class Scan(NamedTuple):
    """What the pre-filter reads of one file's bytes."""

    seed: bool  # the file needs the full pass on its own
    imports: Tuple[Import, ...]
    # The words of the import statements read otherwise (``x = 1; import a``, prose).
    words: FrozenSet[str]
    calls_canvas: bool  # ``.s(``, ``.delay(``...: a seed for another reason than importing Celery


def scan(data: bytes) -> Scan:
    """Whether the file needs the full pass on its own, and what its import statements import.

    An import statement is read as the whole line holding the word ``import`` (code before a
    ``;`` included), continued over backslashes (both ways) and up to the closing parenthesis of
    a parenthesised name list. One alone on its line is kept with its modules and names, since
    through it the file reaches those and nothing else; any other counts by all its words,
    unless ``import`` stands where no statement starts (``an import of invoices`` in a help
    text). Over-reading (``try: import a``, an ``as`` clause) only adds names, which only costs
    time."""
    words: Set[bytes] = set()
    imports: List[Import] = []
    find, length = data.find, len(data)
    position = find(b"import")
    while position != -1:
        start = data.rfind(b"\n", 0, position) + 1
        while start > 0:  # the line may continue one ending with a backslash
            before = start - 2 if data[start - 2:start - 1] == b"\r" else start - 1
            if data[before - 1:before] != b"\\":
                break
            start = data.rfind(b"\n", 0, before) + 1
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
        found, spelled = _read_statement(data[start:end])
        imports.extend(found)
        words.update(spelled)
        position = find(b"import", end)
    names = frozenset(_decode(word) for word in words)
    called = _METHOD_CALL.findall(data)
    methods = frozenset(called)
    calls_canvas = not methods.isdisjoint(_CANVAS_CALLS[1:]) \
        or called.count(b"s") > data.count(_ATTRS_DECORATOR)
    # A file Python could not even decode (binary, UTF-16, a wrong coding declaration, NUL
    # bytes) goes to the full pass, which reports it (CCL999): cheap to find, and worth saying.
    seed = "celery" in names or calls_canvas or undecodable(data) \
        or not methods.isdisjoint(_APP_CALLS) \
        or _TASK_APPLIED in methods or _TASK_DECORATOR.search(data) is not None
    return Scan(seed, tuple(imports), names, calls_canvas)


_STATEMENTS: Dict[bytes, Tuple[Tuple[Import, ...], Tuple[bytes, ...]]] = {}


def _read_statement(statement: bytes) -> Tuple[Tuple[Import, ...], Tuple[bytes, ...]]:
    """The imports of the statement ``scan`` found, or the words it counts by; the word
    "celery" when it imports Celery. Remembered: most import lines of a codebase are written
    in several files (a third are new)."""
    known = _STATEMENTS.get(statement)
    if known is None:
        read = statement
        if b"\\" in read or b"#" in read:
            read = _CONTINUATION.sub(b" ", read)
        found = _read_import(read)
        if found is not None:
            known = (tuple(found), (b"celery",) if _imports_celery(found) else ())
        elif _IMPORT_KEYWORD.search(read):  # not prose (``an import of invoices``)
            known = ((), tuple(_WORD.findall(read)))
        else:
            known = ((), ())
        if len(statement) <= 1024 and len(_STATEMENTS) < 100_000:  # bounded memory
            _STATEMENTS[statement] = known
    return known


def _imports_celery(imports: List[Import]) -> bool:
    # ``from celery import ...``, ``from .celery import app``, ``from flask_celeryext
    # import FlaskCeleryExt`` (an app is made there: index/symbols.py CELERY_EXTENSIONS)
    return any("celery" in module.split(".") or module.split(".")[0] in CELERY_EXTENSION_MODULES
               for _, module, _ in imports)


def _read_import(statement: bytes) -> Optional[List[Import]]:
    """The imports of one statement alone on its line; None when it is not one."""
    found = _FROM_IMPORT.match(statement)
    if found is not None:
        dots, module, names = found.groups()
        imported = tuple(_decode(word) for word in _WORD.findall(names))
        return [(len(dots), _module(module or b""), imported + ("*",) * (b"*" in names))]
    found = _PLAIN_IMPORT.match(statement)
    if found is None:
        return None
    modules = []
    for item in found.group(1).split(b","):
        named = _IMPORTED_MODULE.match(item)
        if named is None:
            return None
        modules.append((0, _module(named.group(1)), None))
    return modules


def _module(dotted: bytes) -> str:
    return _decode(dotted.translate(None, b" \t\r\n\f\v"))


def _decode(word: bytes) -> str:
    return word.decode("utf-8", "replace")


# ---- which names are Celery-related, once the full-pass modules are known ----


class Relevance(NamedTuple):
    """What makes a file left out worth the full pass: it imports something Celery-related."""

    # Module -> the relevant names it binds or re-exports with a star import.
    names: Dict[str, FrozenSet[str]]
    modules: FrozenSet[str]  # modules binding or re-exporting relevant names
    # The relevant names and the last component of each module above: what the words of an
    # import statement read otherwise must spell.
    words: FrozenSet[str]
    # Package -> the next component of each relevant module inside it (``app`` -> ``jobs``
    # for ``app.jobs``).
    inside: Dict[str, FrozenSet[str]]

    def promotes(self, module: str, is_package: bool, imports: Tuple[Import, ...],
                 words: FrozenSet[str], spells: Callable[[FrozenSet[str]], bool]
                 = lambda words: True) -> bool:
        """Whether the file ``module``, whose import statements ``scan`` read, imports
        something relevant. ``spells(words)``: whether the file spells any of ``words`` (the
        caller reads it only when asked)."""
        if not words.isdisjoint(self.words):
            return True
        for level, source, imported in imports:
            absolute = resolve_relative(module, is_package, level, source)
            if absolute is None:
                continue
            if imported is None:  # ``import a.b.c``: reaches a, a.b, a.b.c and their attributes
                if self._reaches(absolute.split("."), spells):
                    return True
            elif "*" in imported and absolute in self.modules or any(
                    name in self.names.get(absolute, ()) or f"{absolute}.{name}" in self.modules
                    for name in imported):
                return True
        return False

    def _reaches(self, parts: List[str], spells: Callable[[FrozenSet[str]], bool]) -> bool:
        """Whether the module ``parts`` is relevant, or one on its way (``a``, ``a.b``) holds a
        relevant name spelled next (``import a.b``: ``b`` may be a task of ``a``) or one
        the file spells: ``import site.util.text`` binds ``site``, whose ``__init__.py`` holds
        the app (as Celery's Django layout has it), yet only a file that spells ``celery_app``
        (or a relevant module of the package) can reach it."""
        module = ""
        for index, part in enumerate(parts):
            module = f"{module}.{part}" if module else part
            if index + 1 == len(parts):
                return module in self.modules or spells(_after(part, self._reachable(module)))
            if parts[index + 1] in self.names.get(module, ()):
                return True
            # The imported path's own next module is the next step (spelled by the import).
            if spells(_after(part, self._reachable(module) - {parts[index + 1]})):
                return True
        return False

    def names_in(self, facts: ModuleFacts) -> FrozenSet[str]:
        """The names through which code of the module ``facts`` may reach something
        Celery-related: its relevant names, and those bound to a package holding a relevant
        module (``import app.jobs`` binds ``app``, and ``app.jobs.charge`` is a task)."""
        names = set(self.names.get(facts.module, ()))
        for name, binding in facts.bindings.items():
            if isinstance(binding, ImportBinding) and (
                    binding.module in self.modules or binding.module in self.inside):
                names.add(name)
        return frozenset(names)

    def _reachable(self, package: str) -> FrozenSet[str]:
        """What a file reaching ``package`` by its attributes must spell to reach something
        relevant: the relevant names it binds, the next component of relevant modules in it."""
        return self.names.get(package, frozenset()) | self.inside.get(package, frozenset())


# Celery's modules whose objects no rule and no index reads (beat schedules, loggers, signals):
# a module binding one (a settings module's ``crontab``) gives its importers no way to a canvas
# or a task, and would otherwise make every module importing the settings read in full.
INERT_CELERY_MODULES = ("celery.schedules.", "celery.utils.log.", "celery.signals.")


def _after(part: str, words: FrozenSet[str]) -> FrozenSet[str]:
    """What a file reaching ``words`` as attributes of the module ``...part`` spells: the
    import binds the path's first name only, so the code writes ``part.word`` (``import
    osf.utils.fields`` reaches ``osf.models`` only by writing it; a Django migration's
    ``models`` of ``django.db`` is not it)."""
    return frozenset(f"{part}.{word}" for word in words)


def relevance(project) -> Relevance:
    """What an importing file must import to reach something Celery-related in ``project``:
    module-level names bound to such objects (a task, a task decorator or base class, an app,
    one of Celery's objects, a variable built from those, a function returning one, a module
    binding some), and the modules holding them (``from . import tasks``)."""
    from celery_chain_lint.index.symbols import (
        CELERY_EXTENSIONS,
        AppSym,
        ClassSym,
        DecoratorSym,
        ExtensionSym,
        External,
        FunctionSym,
        InstanceSym,
        MemberSym,
        ModuleSym,
        TaskSym,
    )

    resolver = project.resolver
    relevant_names: Dict[str, Set[str]] = {module: set() for module in project.modules}

    def relevant(symbol) -> bool:
        if isinstance(symbol, (TaskSym, DecoratorSym, AppSym, MemberSym, ExtensionSym)):
            return True
        if isinstance(symbol, External):
            name = symbol.qualname
            return (name == "celery" or name.startswith("celery.")) \
                and not name.startswith(INERT_CELERY_MODULES) or name in CELERY_EXTENSIONS
        if isinstance(symbol, ModuleSym):  # ``from pkg import jobs as j``: ``j`` names it
            return bool(relevant_names.get(symbol.name))
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
    # function's return values, a class's bases). Not the canvas a function or a method builds
    # and sends itself: the resolver reaches nothing through a call of a plain function nor
    # through a class's attributes, so an importer of them needs nothing more than their
    # definitions (index/resolver.py, ``Resolver.member`` and ``Resolver.call``).
    built: Dict[str, Dict[str, List]] = {}
    # Per module: its functions whose bodies were elided (bodies.py); their return values are
    # read only if the body mentions a relevant name, which reading them would cost a parse.
    elided: Dict[str, Dict[str, object]] = {}
    for module, facts in project.modules.items():
        parts: Dict[str, List] = {}
        for name, binding in facts.bindings.items():
            if isinstance(binding, ValueBinding):
                parts.setdefault(name, []).append(binding.expr)
        for qualname, function in facts.functions.items():
            if "." in qualname:
                continue
            if function.elided is not None:
                elided.setdefault(module, {})[qualname] = function
            else:
                parts.setdefault(qualname, []).extend(value for _, value in function.returns)
                # A factory returning a function it defines (a task, when its decorator is).
                for value in _made(function):
                    nested = facts.functions.get(f"{qualname}.<locals>.{value.text}")
                    if nested is not None:
                        parts[qualname].extend(nested.decorators)
        for qualname, cls in facts.classes.items():
            if "." not in qualname:
                parts.setdefault(qualname, []).extend(cls.bases)
                # An instance used as a task decorator (``TaskIndex.instance_decorator``):
                # what its ``__call__`` returns.
                call = facts.functions.get(cls.methods.get("__call__", ""))
                if call is not None and call.elided is not None:
                    elided.setdefault(module, {})[qualname] = call
                elif call is not None:
                    parts[qualname].extend(value for _, value in call.returns)
        built[module] = {name: exprs for name, exprs in parts.items() if name in facts.bindings}

    def returns_mention(module: str, name: str, names: Set[str]) -> bool:
        # A function it defines and returns may be a task made there: its decorator is in the
        # body, which mentions a relevant name (what it defines is read with it, if at all).
        function = elided.get(module, {}).get(name)
        return function is not None and function.may_return_value() \
            and function.may_mention(names) and (any(mentions(value, names)
                                                     for _, value in function.returns)
                                                 or bool(_made(function)))
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
                        mentions(expr, local) for expr in built[module].get(name, ())) \
                        or returns_mention(module, name, local):
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
    # What a module re-exports with star imports counts as its own (``Resolver.lookup``).
    names = {module: set(local) for module, local in relevant_names.items()}
    changed = True
    while changed:
        changed = False
        for module, facts in project.modules.items():
            for source in facts.star_imports:
                exported = {name for name in names.get(source, ()) if not name.startswith("_")}
                if not exported <= names[module]:
                    names[module] |= exported
                    changed = True
    words: Set[str] = set()
    for local in relevant_names.values():
        words |= local
    for module in modules:
        words.add(module.rsplit(".", 1)[-1])
    inside: Dict[str, Set[str]] = {}
    for module in modules:
        parts = module.split(".")
        for index in range(1, len(parts)):
            inside.setdefault(".".join(parts[:index]), set()).add(parts[index])
    return Relevance({m: frozenset(n) for m, n in names.items() if n}, frozenset(modules),
                     frozenset(words), {p: frozenset(c) for p, c in inside.items()})


def _made(function) -> List[ir.Opaque]:
    """The functions ``function`` defines and returns (``return send``, a nested ``def``)."""
    return [value for _, value in function.returns
            if isinstance(value, ir.Opaque) and value.kind == "local function"]


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

    def names(self) -> List[str]:
        """Every module's name, the ones left out included (none of them is read)."""
        return list(dict.keys(self)) + sorted(self._lazy_names)

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
