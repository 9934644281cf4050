"""``map``, ``starmap`` and ``chunks``: the arguments each item gives the task (rule CCL002).

What Celery 5.7.0 does (``celery/app/task.py``, ``celery/canvas.py``, ``celery/app/builtins.py``):

- ``task.map(it)`` is ``xmap(task.s(), it)``: one ``celery.map`` task that runs
  ``[task(item) for item in it]``: each item is ONE positional argument;
- ``task.starmap(it)`` is ``xstarmap(task.s(), it)``: ``celery.starmap`` runs
  ``[task(*item) for item in it]``: each item is unpacked;
- ``task.chunks(it, n)`` is ``chunks(task.s(), it, n)``, a group of ``xstarmap`` over slices of
  ``n`` items: each item is unpacked too;
- the signature given to ``xmap``/``xstarmap``/``chunks`` is reduced to its task
  (``signature(task).type``): its own arguments and keywords are NOT passed.
  ``xmap(add.s(10), [1, 2])`` runs ``add(1)`` and ``add(2)``.

The task is called as a function inside those builtin tasks, so ``typing`` plays no part: the
``TypeError`` is raised in the worker, and the ``celery.map``/``celery.starmap`` task fails.
Signatures have no ``map``/``starmap``/``chunks`` methods in 5.7 (``add.s().map`` is an
``AttributeError``): the signature forms are the three classes.

Only a literal list or tuple of items is checked; for ``starmap``/``chunks`` only the items that
are themselves literal lists or tuples without a splat (a name, a dict, a string: not known, or
not this rule's). Anything else says nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.index.symbols import External, TaskSym, ValueSym
from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.workflow.binding import BindError, bind, render_call

TASK_METHODS = ("map", "starmap", "chunks")
# Celery's classes, by qualified name: what each does with the items.
CLASSES = {
    "celery.xmap": "map", "celery.canvas.xmap": "map",
    "celery.xstarmap": "starmap", "celery.canvas.xstarmap": "starmap",
    "celery.chunks": "chunks", "celery.canvas.chunks": "chunks",
}
SIGNATURE_METHODS = ("s", "si")
BUILTIN = {"map": "celery.map", "starmap": "celery.starmap", "chunks": "celery.starmap"}


@dataclass(frozen=True, eq=False)
class MappedCall:
    """``task.map(items)``, ``xstarmap(task.s(), items)``, ``task.chunks(items, n)``..."""

    task: object  # index.tasks.Task
    how: str  # "map", "starmap" or "chunks"
    call: ir.Call
    items: Tuple[ir.Expr, ...]
    size: Optional[int] = None  # the chunk size, when a literal
    # The signature's own arguments, which Celery drops (``xmap(add.s(10), items)``): its text.
    dropped: Optional[str] = None
    path: Optional[str] = None  # the file it is in


@dataclass(frozen=True, eq=False)
class MappedProblem:
    mapped: MappedCall
    index: int  # of the first item whose arguments do not bind
    arguments: Tuple[str, ...]  # that item's arguments as the task receives them
    error: BindError
    failing: int  # how many items do not bind

    def rendered_call(self) -> str:
        return render_call(self.mapped.task.display, list(self.arguments), [])

    def rendered_params(self) -> str:
        task = self.mapped.task
        return task.display + task.params.render()


def mapped_call(call: ir.Call, module: str, resolver) -> Optional[MappedCall]:
    """The mapped call ``call`` is, with a literal list of items; None otherwise."""
    if call.has_splat:
        return None
    func = call.func
    dropped = None
    if isinstance(func, ir.Attribute) and func.attr in TASK_METHODS:
        symbol = resolver.resolve(func.value, module)
        if not isinstance(symbol, TaskSym):
            return None  # ``itertools``, a pandas Series, a class with a ``map`` method
        task, how, rest = symbol.task, func.attr, call.positional
        items_expr = rest[0] if rest else call.keyword("it")
        size_expr = rest[1] if len(rest) > 1 else call.keyword("n")
    else:
        positional = call.positional
        signature = positional[0] if positional else call.keyword("task")
        # The shape first: resolving every call of a root would load the modules it names.
        if not (isinstance(signature, ir.Call) and isinstance(signature.func, ir.Attribute)
                and signature.func.attr in SIGNATURE_METHODS):
            return None
        symbol = resolver.resolve(func, module)
        how = CLASSES.get(symbol.qualname) if isinstance(symbol, External) else None
        if how is None:
            return None
        owner = resolver.resolve(signature.func.value, module)
        if not isinstance(owner, TaskSym):
            return None
        task = owner.task
        if signature.args:
            dropped = signature.text or "its arguments"
        items_expr = positional[1] if len(positional) > 1 else call.keyword("it")
        size_expr = positional[2] if len(positional) > 2 else call.keyword("n")
    if how != "chunks":
        size_expr = None
    items = _literal_items(items_expr, module, resolver)
    if items is None:
        return None
    size = literal(size_expr, None) if size_expr is not None else None
    if not isinstance(size, int) or isinstance(size, bool):
        size = None
    return MappedCall(task, how, call, tuple(items), size, dropped)


def _literal_items(expr: Optional[ir.Expr], module: str, resolver) -> Optional[List[ir.Expr]]:
    if isinstance(expr, (ir.Name, ir.Attribute)):
        symbol = resolver.resolve(expr, module)
        if isinstance(symbol, ValueSym) and symbol.module == module:
            expr = symbol.expr  # a module-level constant of this module
    if isinstance(expr, ir.Sequence) and expr.kind in ("list", "tuple") and not expr.has_splat:
        return list(expr.items)
    return None


def item_arguments(how: str, item: ir.Expr) -> Optional[Tuple[str, ...]]:
    """The positional arguments one item gives the task (their source text); None: not known."""
    if how == "map":
        return (item.text or "...",)
    if isinstance(item, ir.Sequence) and item.kind in ("list", "tuple") and not item.has_splat:
        return tuple(element.text or "..." for element in item.items)
    return None


def mapped_problems(project) -> Iterator[MappedProblem]:
    """Every mapped call, in the files reported on, whose items do not all bind."""
    for facts, _root, call in project.root_calls():
        mapped = mapped_call(call, facts.module, project.resolver)
        if mapped is None or mapped.task.params is None:
            continue
        problem = _problem(replace(mapped, path=facts.path))
        if problem is not None:
            yield problem


def _problem(mapped: MappedCall) -> Optional[MappedProblem]:
    first = None
    failing = 0
    for index, item in enumerate(mapped.items):
        arguments = item_arguments(mapped.how, item)
        if arguments is None:
            continue
        error = bind(mapped.task.params, len(arguments), (), complete=True)
        if error is None:
            continue
        failing += 1
        if first is None:
            first = (index, arguments, error)
    if first is None:
        return None
    return MappedProblem(mapped, first[0], first[1], first[2], failing)


def replay_items(mapped: MappedCall) -> list:
    """The items as the runtime harness rebuilds them: an item of ``map`` as one value, an
    item of ``starmap``/``chunks`` as the list of its arguments (a placeholder for each one
    that is not a literal). An item whose arguments are not known is left out."""
    out = []
    for item in mapped.items:
        if mapped.how == "map":
            out.append(_value(item))
            continue
        if not (isinstance(item, ir.Sequence) and item.kind in ("list", "tuple")
                and not item.has_splat):
            continue
        out.append({"literal": [_plain(element) for element in item.items]})
    return out


def _plain(expr: ir.Expr):
    constant = literal(expr)
    if constant is not MISSING and _json(constant):
        return list(constant) if isinstance(constant, tuple) else constant
    return f"<{expr.text}>"


def _value(expr: ir.Expr):
    constant = literal(expr)
    if constant is not MISSING and _json(constant):
        return {"literal": list(constant) if isinstance(constant, tuple) else constant}
    return {"placeholder": expr.text}


def _json(constant) -> bool:
    if isinstance(constant, (list, tuple)):
        return all(_json(item) for item in constant)
    return isinstance(constant, (str, int, float, bool, type(None)))
