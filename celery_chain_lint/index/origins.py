"""Where a called function comes from, as a dotted name: ``requests.Session().get``.

Rules about a task's body ask "is this a call into requests / boto3 / pandas?". The resolver
answers for plain names (``pd.read_csv`` -> ``pandas.read_csv``); this module also follows
method calls on returned objects (``boto3.client("s3").upload_file`` ->
``boto3.client().upload_file``) and module-level variables (``s3 = boto3.client("s3")``).
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Iterable, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.symbols import External, ValueSym

if TYPE_CHECKING:
    from celery_chain_lint.index.resolver import Resolver

MAX_DEPTH = 30


def origin(resolver: "Resolver", expr: Optional[ir.Expr], module: str,
           depth: int = 0) -> Optional[str]:
    """The dotted origin of ``expr`` in code that is not analysed, or None."""
    if expr is None or depth > MAX_DEPTH:
        return None
    if isinstance(expr, (ir.Name, ir.Imported)):
        return _symbol_origin(resolver, resolver.resolve(expr, module), depth)
    if isinstance(expr, ir.Attribute):
        found = _symbol_origin(resolver, resolver.resolve(expr, module), depth)
        if found is not None:
            return found
        base = origin(resolver, expr.value, module, depth + 1)
        return None if base is None else f"{base}.{expr.attr}"
    if isinstance(expr, ir.Call):
        base = origin(resolver, expr.func, module, depth + 1)
        return None if base is None else base + "()"
    return None


def _symbol_origin(resolver: "Resolver", symbol: object, depth: int) -> Optional[str]:
    if isinstance(symbol, External):
        name = symbol.qualname
        return name[len("builtins."):] if name.startswith("builtins.") else name
    if isinstance(symbol, ValueSym):  # ``s3 = boto3.client("s3")`` at module level
        return origin(resolver, symbol.expr, symbol.module, depth + 1)
    return None


def in_modules(name: Optional[str], modules: Iterable[str]) -> bool:
    """Whether dotted ``name`` lies in one of ``modules`` (``requests`` holds ``requests.get``)."""
    if not name:
        return False
    return any(name == m or name.startswith(m + ".") or name.startswith(m + "()")
               for m in modules)


def matches(name: Optional[str], patterns: Iterable[str]) -> bool:
    """Whether dotted ``name`` matches one of ``patterns`` (shell wildcards: ``pandas.read_*``)."""
    return bool(name) and any(fnmatchcase(name, pattern) for pattern in patterns)
