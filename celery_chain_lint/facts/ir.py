"""A small, picklable expression language: the parts of Python expressions the rules read.

Names inside a function are already resolved against that function's straight-line local
assignments when the IR is built, so a signature kept in a variable carries the position where
it was created. Everything the analyser cannot follow becomes ``Opaque``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator, NamedTuple, Optional, Tuple


class Span(NamedTuple):
    """1-based line and column; end_column is exclusive (as ruff reports). A tuple: the facts
    hold one for every expression, and a tuple is built and pickled several times faster than
    a frozen dataclass."""

    line: int
    column: int
    end_line: int
    end_column: int

    def contains_line(self, line: int) -> bool:
        return self.line <= line <= self.end_line


@dataclass(frozen=True, eq=False)
class Expr:
    span: Optional[Span] = field(default=None, kw_only=True)
    # Source text of the expression, shortened; used to quote arguments in messages.
    text: str = field(default="", kw_only=True)

    def children(self) -> Iterator["Expr"]:
        return iter(())


@dataclass(frozen=True, eq=False)
class Name(Expr):
    id: str


@dataclass(frozen=True, eq=False)
class Imported(Expr):
    """A name bound by an import inside a function: ``from .tasks import add`` -> ("pkg.tasks", "add")."""

    module: str
    name: Optional[str]  # None for ``import a.b as m``


@dataclass(frozen=True, eq=False)
class Attribute(Expr):
    value: Expr
    attr: str
    # Span of the attribute name alone, the target of fixes like ``.s`` -> ``.si``.
    attr_span: Optional[Span] = None

    def children(self):
        yield self.value


@dataclass(frozen=True, eq=False)
class Arg:
    value: Expr
    keyword: Optional[str] = None
    star: str = ""  # "", "*" or "**"


@dataclass(frozen=True, eq=False)
class Call(Expr):
    func: Expr
    args: Tuple[Arg, ...] = ()

    def children(self):
        yield self.func
        for arg in self.args:
            yield arg.value

    @property
    def positional(self) -> Tuple[Expr, ...]:
        return tuple(a.value for a in self.args if not a.keyword and not a.star)

    def keyword(self, name: str) -> Optional[Expr]:
        for arg in self.args:
            if arg.keyword == name:
                return arg.value
        return None

    @property
    def has_splat(self) -> bool:
        return any(a.star for a in self.args)


@dataclass(frozen=True, eq=False)
class BinOp(Expr):
    op: str  # only "|" matters to the rules
    left: Expr
    right: Expr

    def children(self):
        yield self.left
        yield self.right


@dataclass(frozen=True, eq=False)
class Starred(Expr):
    value: Expr

    def children(self):
        yield self.value


@dataclass(frozen=True, eq=False)
class Sequence(Expr):
    kind: str  # "list", "tuple" or "set"
    items: Tuple[Expr, ...] = ()

    def children(self):
        return iter(self.items)

    @property
    def has_splat(self) -> bool:
        return any(isinstance(item, Starred) for item in self.items)


@dataclass(frozen=True, eq=False)
class Dict(Expr):
    keys: Tuple[Optional[Expr], ...] = ()  # None marks a ``**mapping`` entry
    values: Tuple[Expr, ...] = ()

    def children(self):
        for key in self.keys:
            if key is not None:
                yield key
        yield from self.values


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: Any  # str, int, float, bool, None or bytes


@dataclass(frozen=True, eq=False)
class Comprehension(Expr):
    kind: str  # "generator", "list", "set" or "dict"
    element: Expr

    def children(self):
        yield self.element


@dataclass(frozen=True, eq=False)
class Opaque(Expr):
    """Anything the analyser does not follow (a subscript, a lambda, a reassigned variable...)."""

    kind: str = "expression"
    parts: Tuple[Expr, ...] = ()

    def children(self):
        return iter(self.parts)


@dataclass(frozen=True, eq=False)
class Changed(Opaque):
    """A local whose attributes the function wrote (``celery.Task = ContextTask``): unknown as
    a value, as any reassigned local (``sig.immutable = True`` changes a signature), but still
    the object it was (``was``, not a child: nothing walks into it), with the attributes
    written, dotted (``("Task",)``). Only the object's identity is read through it: the app
    Flask's ``make_celery`` recipe returns (``Resolver.app_factory``)."""

    was: Optional[Expr] = None
    attributes: Tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Alternatives(Expr):
    """A local variable's value after an ``if`` whose branches give it different values, each
    known (``flow = a.s()``, then ``flow |= b.s()`` in a branch): one option per path. The
    workflow builder follows each path when every option is a canvas it knows, and nothing
    otherwise."""

    options: Tuple[Expr, ...] = ()

    def children(self):
        return iter(self.options)


@dataclass(frozen=True, eq=False)
class Scoped(Expr):
    """An expression of another module, placed in this one by the workflow builder (an argument
    a caller passes to a helper function of another module): its names resolve in ``module``.
    Never made by the extractor: facts hold one module's expressions."""

    module: str
    value: Expr

    def children(self):
        yield self.value


# Per expression class: its fields holding expressions (one, or a tuple of them).
_EXPR_FIELDS = {
    Attribute: ("value",), Call: ("func", "args"), BinOp: ("left", "right"),
    Starred: ("value",), Sequence: ("items",), Dict: ("keys", "values"),
    Comprehension: ("element",), Opaque: ("parts",), Scoped: ("value",),
    Alternatives: ("options",),
}


def transform(expr: Optional[Expr], change, _memo: Optional[dict] = None) -> Optional[Expr]:
    """``expr`` with every sub-expression for which ``change(node)`` gives an expression
    replaced by it (not looked into), the nodes above rebuilt, the others shared. Subtrees
    shared by substitution are transformed once. Depth is bounded by the extractor."""
    if expr is None:
        return None
    memo = {} if _memo is None else _memo
    if id(expr) in memo:
        return memo[id(expr)][1]
    replaced = change(expr)
    if replaced is None:
        replaced = expr
        changes = {}
        for name in _EXPR_FIELDS.get(type(expr), ()):
            value = getattr(expr, name)
            if isinstance(value, tuple):
                items = tuple(_transform_item(item, change, memo) for item in value)
                if any(new is not old for new, old in zip(items, value)):
                    changes[name] = items
            else:
                new = transform(value, change, memo)
                if new is not value:
                    changes[name] = new
        if changes:
            replaced = replace(expr, **changes)
    memo[id(expr)] = (expr, replaced)  # the key object is kept alive with its id
    return replaced


def _transform_item(item, change, memo):
    if isinstance(item, Arg):
        value = transform(item.value, change, memo)
        return item if value is item.value else Arg(value, item.keyword, item.star)
    return transform(item, change, memo) if isinstance(item, Expr) else item


def variants(expr: Expr, limit: int) -> Optional[list]:
    """``expr`` once per combination of the options of the ``Alternatives`` inside it (one
    path through the branches that built it), each free of them; None beyond ``limit``."""
    found = next((node for node in walk(expr) if isinstance(node, Alternatives)), None)
    if found is None:
        return [expr]
    out: list = []
    for option in found.options:
        chosen = transform(expr, lambda node, option=option: option if node is found else None)
        more = variants(chosen, limit - len(out))
        if more is None or len(out) + len(more) > limit:
            return None
        out.extend(more)
    return out


def walk(expr: Expr) -> Iterator[Expr]:
    """Every expression below and including ``expr``, iteratively (deep trees must not recurse)."""
    stack = [expr]
    seen = set()
    while stack:
        node = stack.pop()
        key = id(node)
        if key in seen:  # substituted variables share subtrees
            continue
        seen.add(key)
        yield node
        if type(node).children is not _NO_CHILDREN:  # a name, a constant: most nodes
            children = list(node.children())
            children.reverse()
            stack += children


_NO_CHILDREN = Expr.children


def dotted_name(expr: Expr) -> Optional[str]:
    """``a.b.c`` for a chain of plain names and attributes, else None."""
    parts = []
    while isinstance(expr, Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, Name):
        return None
    parts.append(expr.id)
    return ".".join(reversed(parts))
