"""CCL024 serial-map: a fan-out written with ``map``/``starmap``/``chunks`` runs as one task.

## What it does
Flags two shapes where a parallel fan-out was clearly meant and a serial loop is what runs:

- a group, or a chord header, whose only member is ``task.map(items)`` or
  ``task.starmap(items)``: ``group([resize.map(ids)])``, ``chord([fetch.map(urls)], merge.s())``;
- ``task.chunks(items, n)`` (or ``chunks(task.s(), items, n)``) with a literal list of items and
  a literal chunk size ``n`` at least as large as the list: one chunk.

``task.map(items).delay()`` on its own is not reported: running the items one after another in
one task is what ``map`` is documented to do.

## Why is this bad?
``task.map(items)`` is one message for Celery's own ``celery.map`` task, which calls the task
function for each item in turn inside one worker (``[task(item) for item in it]``); a group of
one such member is still one task. ``chunks(items, n)`` splits the items into chunks of SIZE
``n`` (not into ``n`` chunks), each chunk one ``celery.starmap`` task. Observed on Celery 5.7.0
(Redis broker and backend, threads worker with concurrency 4, a task sleeping 0.3 s):
``group([nap.map([1, 2, 3, 4])])`` took 1.29 s and returned ``[[1, 2, 3, 4]]`` (one member);
``group(nap.s(i) for i in [1, 2, 3, 4])`` took 0.51 s; ``nap.chunks([(1,), (2,), (3,), (4,)],
10)`` and ``(..., 4)`` one chunk, 1.21 s; ``(..., 1)`` four chunks, 0.52 s. A chord over
``[nap.map(items)]`` also hands its body ``[[1, 2, 3, 4]]``, a list holding one list.

## Example
```python
group([thumbnail.map(image_ids)]).delay()            # one task, images one after another
thumbnail.chunks([(1,), (2,), (3,)], 10).delay()     # one chunk of three
```

## How to fix
Give each item its own signature, or a chunk size smaller than the list:
```python
group(thumbnail.s(image_id) for image_id in image_ids).delay()
thumbnail.chunks([(1,), (2,), (3,)], 1).delay()
```
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.index.symbols import External, TaskSym, celery_name
from celery_chain_lint.index.tasks import literal
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import Value
from celery_chain_lint.workflow.replay import MappedCall, Replay, replay_value, task_replay

_APP = """\
from celery import Celery, chain, chord, chunks, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def resize(image_id):
    return image_id

@app.task
def merge(values):
    return values
"""
MAPS = ("map", "starmap")
CHUNKS_CLASS = frozenset({"celery.chunks", "celery.canvas.chunks"})


class SerialMap(Rule):
    code = "CCL024"
    name = "serial-map"
    summary = ("a group or chord header whose only member is task.map()/starmap(), or "
               "chunks() with a chunk size covering every item: one task runs them serially")

    VALID = [
        _APP + "resize.map([1, 2, 3]).delay()\n",
        _APP + "group(resize.s(i) for i in [1, 2, 3]).delay()\n",
        _APP + "group([resize.map([1, 2]), resize.map([3, 4])]).delay()\n",
        _APP + "resize.chunks([(1,), (2,), (3,)], 1).delay()\n",
        _APP + "resize.chunks(items, 10).delay()\n",
        _APP + "resize.chunks([(1,), (2,), (3,)], size).delay()\n",
        _APP + "import re\nre.match('a', 'a').group(1)\n",
    ]
    INVALID = [
        _APP + "group([resize.map([1, 2, 3])]).delay()  # expect: CCL024\n",
        _APP + "group(resize.starmap([(1,), (2,)])).delay()  # expect: CCL024\n",
        _APP + "chord([resize.map(ids)], merge.s()).delay()  # expect: CCL024\n",
        _APP + "resize.chunks([(1,), (2,), (3,)], 10).delay()  # expect: CCL024\n",
        _APP + "chunks(resize.s(), [(1,), (2,)], 2).delay()  # expect: CCL024\n",
    ]

    def check(self, project) -> Iterator:
        seen = set()  # a group's member is the finding's call: reached from both
        for facts, _root, node in project.root_calls():
            found = self._mapped_fan_out(project, facts.module, node) or \
                self._one_chunk(project, facts.module, node)
            if found is None:
                continue
            call, message, replay = found
            key = (facts.path, call.span)
            if key in seen:
                continue
            seen.add(key)
            yield self.finding(facts.path, call.span, message, replay=replay)

    # ---- group([task.map(items)]) / chord([task.map(items)], body) ----

    def _mapped_fan_out(self, project, module: str, call: ir.Call):
        as_group, as_chord = _members(call), _header(call)
        if not (_one_map(as_group) or _one_map(as_chord)):
            return None  # decided before resolving the callee, which may read a module
        kind = celery_name(project.resolver.resolve(call.func, module))
        if kind == "group":
            members = as_group
        elif kind == "chord":
            members = as_chord
        else:
            return None
        if not members or len(members) != 1:
            return None
        member = members[0]
        mapped = _task_method(project, module, member, MAPS)
        if mapped is None:
            return None
        task, how = mapped
        items_expr = member.positional[0] if member.positional else member.keyword("it")
        items = _literal_items(items_expr)
        container = "chord header" if kind == "chord" else "group"
        name = task.display
        message = (f"the {container}'s only member, {member.text or name + '.' + how + '(...)'}"
                   f", is one task (celery.{how}) that calls {name} for each item one after "
                   f"another inside one worker: nothing runs in parallel"
                   f"{' and the body receives a list holding one list' if kind == 'chord' else ''}"
                   f"; give each item its own signature: group({name}.s("
                   f"{'*' if how == 'starmap' else ''}item) for item in items)")
        return member, message, _replay(task, how, items, None, container)

    # ---- task.chunks(items, n) with n >= len(items) ----

    def _one_chunk(self, project, module: str, call: ir.Call):
        func = call.func
        args: Tuple[ir.Expr, ...]
        if isinstance(func, ir.Attribute) and func.attr == "chunks":
            symbol = project.resolver.resolve(func.value, module)
            if not isinstance(symbol, TaskSym):
                return None
            task = symbol.task
            args = call.positional
            items_expr = args[0] if args else call.keyword("it")
            size_expr = args[1] if len(args) > 1 else call.keyword("n")
        else:
            args = call.positional
            signature = args[0] if args else call.keyword("task")
            if not (isinstance(signature, ir.Call) and isinstance(signature.func, ir.Attribute)
                    and signature.func.attr in ("s", "si", "signature")):
                return None
            symbol = project.resolver.resolve(func, module)
            if not (isinstance(symbol, External) and symbol.qualname in CHUNKS_CLASS):
                return None
            owner = project.resolver.resolve(signature.func.value, module)
            if not isinstance(owner, TaskSym) or signature.args:
                # Arguments of its own: Celery drops them, keeping only the task (observed
                # on 5.7.0; CCL002 says so); what the author meant to map is not clear.
                return None
            task = owner.task
            items_expr = args[1] if len(args) > 1 else call.keyword("it")
            size_expr = args[2] if len(args) > 2 else call.keyword("n")
        if call.has_splat:
            return None
        items = _literal_items(items_expr)
        size = literal(size_expr, None) if size_expr is not None else None
        if items is not None and any(isinstance(item, (ir.Const, ir.Dict)) for item in items):
            return None  # ``task(*1)``: a TypeError, not a serial run
        if items is None or len(items) < 2 or not isinstance(size, int) \
                or isinstance(size, bool) or size < len(items):
            return None
        name = task.display
        message = (f"chunks() takes the chunk SIZE: {size} for {len(items)} items makes one "
                   f"chunk, one celery.starmap task that runs {name} on every item one after "
                   f"another; use a smaller size (chunks(items, 1) sends one task per item) or "
                   f"group({name}.s(*args) for args in items)")
        return call, message, _replay(task, "chunks", items, size, "chunks")


def _members(call: ir.Call) -> Optional[List[ir.Expr]]:
    """The members of ``group(a, b)`` / ``group([a, b])`` as written; None when dynamic."""
    arguments = [a for a in call.args if not a.keyword]
    if any(a.star for a in arguments):
        return None
    values = [a.value for a in arguments]
    if len(values) == 1 and isinstance(values[0], ir.Sequence):
        return None if values[0].has_splat else list(values[0].items)
    if len(values) == 1 and isinstance(values[0], ir.Comprehension):
        return None
    return values


def _header(call: ir.Call) -> Optional[List[ir.Expr]]:
    """The header of ``chord([a, b], body)`` / ``chord(header=[...])`` as written."""
    header = call.positional[0] if call.positional else call.keyword("header")
    return list(header.items) if isinstance(header, ir.Sequence) and not header.has_splat \
        else None


def _one_map(members: Optional[List[ir.Expr]]) -> bool:
    """One member, written ``x.map(...)`` or ``x.starmap(...)``."""
    return bool(members) and len(members) == 1 and isinstance(members[0], ir.Call) \
        and isinstance(members[0].func, ir.Attribute) and members[0].func.attr in MAPS


def _task_method(project, module: str, expr: ir.Expr, methods) -> Optional[Tuple[object, str]]:
    if isinstance(expr, ir.Call) and isinstance(expr.func, ir.Attribute) \
            and expr.func.attr in methods and not expr.has_splat:
        symbol = project.resolver.resolve(expr.func.value, module)
        if isinstance(symbol, TaskSym):
            return symbol.task, expr.func.attr
    return None


def _literal_items(expr: Optional[ir.Expr]) -> Optional[List[ir.Expr]]:
    if isinstance(expr, ir.Sequence) and expr.kind in ("list", "tuple") and not expr.has_splat:
        return list(expr.items)
    return None


def _replay(task, how: str, items: Optional[List[ir.Expr]], size: Optional[int],
            container: str) -> Replay:
    values = None if items is None else tuple(replay_value(Value(item.text or "...", item))
                                              for item in items)
    return Replay(task=task_replay(task), mapped=MappedCall(how, container, size, values),
                  tasks={task.name: task_replay(task)} if task.name else {})
