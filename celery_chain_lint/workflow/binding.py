"""Python's argument binding, replayed on a task's parameter list.

Celery checks a task's arguments by calling a stub with the task's signature
(``celery.utils.functional.head_from_fun``), so the errors are exactly Python's own:
too many positional arguments, an unexpected keyword, a duplicate value, a missing argument.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from celery_chain_lint.facts.model import (
    KEYWORD_ONLY,
    POSITIONAL_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    Params,
)


@dataclass(frozen=True)
class BindError:
    kind: str  # "too-many", "unexpected-keyword", "multiple-values", "missing"
    reason: str  # for the message: "2 positional arguments for 1 parameter"
    # Whether more arguments arriving later (a canvas applied with args) could still fix it.
    fixable_later: bool = False


def bind(params: Params, positional: int, keywords: Sequence[str],
         complete: bool) -> Optional[BindError]:
    """The first binding error of a call, or None. ``complete=False`` skips missing arguments."""
    items = params.items
    slots = [p for p in items if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    accepts_varargs = any(p.kind == VAR_POSITIONAL for p in items)
    accepts_varkw = any(p.kind == VAR_KEYWORD for p in items)
    if positional > len(slots) and not accepts_varargs:
        return BindError("too-many", f"{_count(positional, 'positional argument')} for "
                                     f"{_count(len(slots), 'parameter')}")
    filled = {p.name for p in slots[:positional]}
    by_keyword = {p.name: p for p in items if p.kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)}
    for name in keywords:
        if name in filled:
            return BindError("multiple-values", f"multiple values for argument {name!r}")
        if name not in by_keyword and not accepts_varkw:
            return BindError("unexpected-keyword", f"unexpected keyword argument {name!r}")
        if name in by_keyword:
            filled.add(name)
    if not complete:
        return None
    missing = [p.name for p in items
               if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)
               and not p.has_default and p.name not in filled]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        noun = "argument" if len(missing) == 1 else "arguments"
        return BindError("missing", f"missing required {noun} {names}", fixable_later=True)
    return None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def render_call(display: str, positional: Sequence[str],
                keywords: Sequence[Tuple[str, str]]) -> str:
    parts = list(positional) + [f"{name}={value}" for name, value in keywords]
    return f"{display}({', '.join(parts)})"
