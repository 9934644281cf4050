"""What the extractor records about one module: bindings, definitions and workflow roots."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

from celery_chain_lint.facts.ir import Call, Expr, Span

# Parameter kinds, named as in inspect.Parameter.
POSITIONAL_ONLY = "positional-only"
POSITIONAL_OR_KEYWORD = "positional-or-keyword"
VAR_POSITIONAL = "var-positional"
KEYWORD_ONLY = "keyword-only"
VAR_KEYWORD = "var-keyword"


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    has_default: bool = False

    def render(self) -> str:
        if self.kind == VAR_POSITIONAL:
            return "*" + self.name
        if self.kind == VAR_KEYWORD:
            return "**" + self.name
        return self.name + ("=..." if self.has_default else "")


@dataclass(frozen=True)
class Params:
    items: Tuple[Param, ...] = ()

    def without_first(self) -> "Params":
        """The parameters a bound method or a ``bind=True`` task exposes to callers."""
        first = self.items[:1]
        if first and first[0].kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD):
            return Params(self.items[1:])
        return self

    def render(self) -> str:
        out = []
        kinds = [p.kind for p in self.items]
        for index, param in enumerate(self.items):
            if param.kind == KEYWORD_ONLY and VAR_POSITIONAL not in kinds[:index] and (
                index == 0 or self.items[index - 1].kind != KEYWORD_ONLY
            ):
                out.append("*")
            out.append(param.render())
            if param.kind == POSITIONAL_ONLY and (
                index + 1 == len(self.items) or self.items[index + 1].kind != POSITIONAL_ONLY
            ):
                out.append("/")
        return "(" + ", ".join(out) + ")"


def resolve_relative(module: str, is_package: bool, level: int, target: str) -> Optional[str]:
    """The absolute module named by ``from <dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(package):
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([target] if target else [])) or None


# ---- bindings: what a name means at module level (or as a function-local import) ----


@dataclass(frozen=True)
class ImportBinding:
    """``import a.b`` binds ``a`` to module "a"; ``import a.b as m`` binds ``m`` to "a.b"."""

    module: str


@dataclass(frozen=True)
class FromImportBinding:
    """``from a import b``: either submodule ``a.b`` or attribute ``b`` of ``a``."""

    module: str
    name: str


@dataclass(frozen=True)
class DefBinding:
    kind: str  # "function" or "class"
    qualname: str


@dataclass(frozen=True)
class ValueBinding:
    expr: Expr


@dataclass(frozen=True)
class ElidedValue:
    """``name = value`` at module level, in a module read for its definitions only
    (celery_chain_lint/load/bodies.py): the lines of the statement, parsed when the name is
    resolved (``bodies.ValueOnDemand``, a ValueBinding)."""

    name: str
    first_line: int
    last_line: int


@dataclass(frozen=True)
class UnknownBinding:
    """Bound in a way the analyser does not follow (a loop target, tuple unpacking, ...)."""


Binding = object  # one of the binding classes above


@dataclass
class FunctionFacts:
    qualname: str
    name: str
    span: Span  # the ``def`` keyword up to the end of the body
    name_span: Span
    params: Params
    decorators: Tuple[Expr, ...] = ()
    is_async: bool = False
    is_method: bool = False
    # Return values (locals already substituted) with the span of each ``return`` statement.
    returns: List[Tuple[Span, Optional[Expr]]] = field(default_factory=list)
    # Every call in the body, with the ``with`` items and ``except`` clauses around it.
    calls: List["CallSite"] = field(default_factory=list)
    # Plain names a ``for`` loop or a comprehension iterates over (``for s in scores``).
    iterated: List[str] = field(default_factory=list)
    # None when the body was read with the rest of the module, else how to read it later.
    elided: Optional["ElidedBody"] = None
    # For a decorator ``def deco(f)`` returning a function wrapped with ``wraps(f)`` that
    # calls ``f(*args, **kwargs)`` with its own arguments untouched: that ``wraps`` (the
    # index checks it is ``functools.wraps``); a task under it has ``f``'s parameters.
    passes_through: Optional[Expr] = None
    # For a module-level function that stores something on a name it returns or on one of
    # its parameters, or hands a name it returns to another function: those stores and
    # calls, as written (index/flask_apps.py: the Celery app a Flask application factory
    # keeps on the Flask app it returns). None for the others.
    stores: Optional["Stores"] = None
    # Set once the project is known: the body, elided, may hold roots but names nothing
    # through which it could reach a Celery object or a plain function (facts/roots.py), so
    # it was left unread, and rules that read every function's calls skip it.
    left_unread: bool = False

    def may_mention(self, names: Iterable[str]) -> bool:
        """False only when the body is known, without reading it, to use none of ``names``
        as a plain name: ask before reading the body of every function (reading an elided body
        parses it)."""
        return self.elided is None or self.elided.names is None \
            or not self.elided.names.isdisjoint(names)

    def may_return_value(self) -> bool:
        """False only when the body is known, without reading it, to return no value."""
        return self.elided is None or self.elided.returns_value is not False

    def may_use_attribute(self, attributes: Iterable[str]) -> bool:
        """False only when the body is known, without reading it, to spell none of
        ``attributes`` as an attribute name (``x.delay``)."""
        return self.elided is None or self.elided.attributes is None \
            or not self.elided.attributes.isdisjoint(attributes)


@dataclass(frozen=True)
class Store:
    """``<owner>.<attribute> = value`` or ``<owner>.extensions["key"] = value`` in a function's
    own body (not in the functions, classes or lambdas it defines), ``owner`` a plain name."""

    owner: str
    key: Tuple[str, str]  # ("attribute", the attribute) or ("extension", the key)
    name: Optional[str]  # the value, when it is a plain name
    # What the value is, a plain name read through the function's one assignment of it
    # (``celery = make_celery(app)``, then ``app.celery = celery``): (True, the function
    # called as a dotted name) for a call, (False, the dotted name) for a name or an
    # attribute of one; None for anything else, a call of something else, a name assigned
    # more than once or a parameter.
    value: Optional[Tuple[bool, Tuple[str, ...]]]
    # The call, when the value is one, as read (``Celery(...)`` made in the function is an app
    # of its own: index/flask_apps.py).
    call: Optional[Call] = None


@dataclass(frozen=True)
class Stores:
    """What a module-level function stores on the names it returns and on its parameters
    (``FunctionFacts.stores``), read in its own body as written: no local substituted."""

    returns: Tuple[Optional[str], ...]  # each ``return``'s value when a plain name, else None
    stores: Tuple[Store, ...]  # on a name it returns or a positional-or-keyword parameter
    # (function called, position, the name): each plain call ``helper(..., name, ...)``
    # passing a name it returns as a positional argument.
    passes: Tuple[Tuple[str, int, str], ...] = ()


@dataclass(frozen=True)
class ConfigUses:
    """The uses of a module-level name in its module, each one followed (``ModuleFacts.
    config_uses``): what is written to ``<name>.config`` at module level in literals, and the
    functions the name is handed to."""

    # (key, whether the value is a literal, the value or None, line) of each key written
    # (the last write of a key wins), in the order the keys are first met
    written: Tuple[Tuple[str, bool, object, int], ...] = ()
    # The function, as a dotted name (None when it is not one), of each call the name is
    # passed to as a positional argument: the index requires each to be the Celery factory or
    # a library's (``CORS(app)``).
    passed_to: Tuple[Optional[Tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class ElidedBody:
    """A function body the facts pass left for later (celery_chain_lint/load/bodies.py): what it
    spells, and where it is, so that it alone can be parsed when a rule reads it."""

    # Plain and imported names, attribute names; None when not read (the definitions tier).
    names: Optional[FrozenSet[str]]
    attributes: Optional[FrozenSet[str]]
    first_line: int  # the first decorator's line, or the ``def`` line
    last_line: int
    # The compound statements around the ``def``, outermost first: (line, indentation,
    # header) with header "class Name:" for classes and "if 1:" for the others.
    enclosing: Tuple[Tuple[int, str, str], ...] = ()
    # Whether it may hold workflow roots, to be read if it spells a Celery-related name
    # (``roots.IF_RELEVANT``), and the function's qualname.
    may_hold_roots: bool = False
    qualname: str = ""
    # The dotted receivers of its task methods (``roots.Body.receivers``); None when unknown.
    receivers: Optional[FrozenSet[Tuple[str, ...]]] = None
    # Whether it holds a ``return`` with a value; None when unknown.
    returns_value: Optional[bool] = None


@dataclass(frozen=True)
class ElidedStatements:
    """A class body's simple statements (its attributes, ``x = models.CharField(...)``) that
    the facts pass left for later (celery_chain_lint/load/bodies.py), to be parsed alone when a
    rule reads the class's attributes."""

    ranges: Tuple[Tuple[int, int], ...]  # (first line, last line) of each run of statements
    # The compound statements around them, outermost first, the class itself last: as in
    # ``ElidedBody.enclosing``.
    enclosing: Tuple[Tuple[int, str, str], ...]


@dataclass(frozen=True)
class CallSite:
    call: Expr
    with_items: Tuple[Expr, ...] = ()
    # For each enclosing ``except`` clause: its exception expressions (empty tuple for bare
    # ``except:``) and whether the clause re-raises.
    handlers: Tuple[Tuple[Tuple[Expr, ...], bool], ...] = ()
    in_try_body: bool = False


@dataclass(frozen=True)
class NamesCall:
    """A call ``a.b(c, d.e, key=f, ...)`` of a dotted name passing at least one dotted name,
    without ``*`` or ``**``, written as names only (``ModuleFacts.calls``: a module of URL
    patterns makes hundreds of calls, whose other arguments nothing reads)."""

    func: Tuple[str, ...]
    positional: Tuple[Optional[Tuple[str, ...]], ...]  # each argument's dotted name, or None
    keywords: Tuple[Tuple[str, Optional[Tuple[str, ...]]], ...] = ()


@dataclass
class ClassFacts:
    qualname: str
    name: str
    span: Span
    bases: Tuple[Expr, ...] = ()
    keywords: Dict[str, Expr] = field(default_factory=dict)
    attributes: Dict[str, Expr] = field(default_factory=dict)
    methods: Dict[str, str] = field(default_factory=dict)  # method name -> function qualname
    # None when the class body was read with the rest of the module, else where its simple
    # statements (read for ``attributes`` only) are, to read them when ``attributes`` is asked.
    elided: Optional["ElidedStatements"] = None


@dataclass(frozen=True)
class Root:
    """A statement-level expression that may build or apply a workflow.

    ``scope`` is the qualname of the enclosing function ("" at module level); ``kind`` says how
    the value is used: "expr" (a bare statement), "return", "assign" or "other".
    """

    scope: str
    kind: str
    expr: Expr


@dataclass
class ModuleFacts:
    path: str
    module: str
    is_package: bool
    bindings: Dict[str, Binding] = field(default_factory=dict)
    star_imports: List[str] = field(default_factory=list)
    functions: Dict[str, FunctionFacts] = field(default_factory=dict)
    classes: Dict[str, ClassFacts] = field(default_factory=dict)
    roots: List[Root] = field(default_factory=list)
    # The calls made at module level (not in a function, nor in a class body) of a dotted
    # name passing one, in the order the extractor meets them: with the calls in each
    # function's body (``FunctionFacts.calls``), where index/factories.py finds the calls of
    # a function given an app.
    calls: List["NamesCall"] = field(default_factory=list)
    # Module-level ``x.attr = value`` assignments (``app.conf.result_backend = ...``).
    attribute_assignments: List[Tuple[Expr, Expr]] = field(default_factory=list)
    # ``x.conf.name = value`` inside functions: (the function's qualname, the target). Whether
    # and when the function runs is unknown, so the setting it writes is too.
    conf_writes_in_functions: List[Tuple[str, Expr]] = field(default_factory=list)
    # Elided bodies that may hold roots (``ElidedBody.may_hold_roots``), in source order:
    # their roots are added to ``roots`` once the project is known, if relevant.
    roots_if_relevant: List["ElidedBody"] = field(default_factory=list)
    # In a module where Celery reads a Flask app's config (``celery.conf.update(x.config)``),
    # how each module-level name made by a call (``flask_app = Flask(__name__)``) is used
    # (``ConfigUses``), or None when a use cannot be followed: index/flask.py. Empty elsewhere.
    config_uses: Dict[str, Optional["ConfigUses"]] = field(default_factory=dict)
    # False only when the source, read as bytes, spells no way for the module to get
    # attributes the analysis does not see (``__getattr__``, ``globals()``, ``setattr(``...:
    # ``whole_file.ADDS_ATTRIBUTES``), and no way to add or check another module's
    # (``hasattr(``, ``getattr(``, ``setattr(``, ``sys.modules``, ``__dict__``): CCL015 says
    # nothing of a name a module lacks then.
    may_add_attributes: bool = True
    may_check_attributes: bool = True
