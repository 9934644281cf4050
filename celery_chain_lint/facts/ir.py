"""A small, picklable expression language: the parts of Python expressions the rules read.

Names inside a function are already resolved against that function's straight-line local
assignments when the IR is built, so a signature kept in a variable carries the position where
it was created. Everything the analyser cannot follow becomes ``Opaque``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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


def walk(expr: Expr) -> Iterator[Expr]:
    """Every expression below and including ``expr``, iteratively (deep trees must not recurse)."""
    stack = [expr]
    seen = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # substituted variables share subtrees
            continue
        seen.add(id(node))
        yield node
        stack.extend(reversed(list(node.children())))


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
