"""CCL006 wait-in-task: a task waits for another task's result.

## What it does
Flags ``.get()``, ``.wait()``, ``.join()``, ``.join_native()`` and ``.collect()`` inside a task's
body when called on a Celery result: the value of ``task.delay(...)``,
``task.apply_async(...)``, an applied canvas (``group(...).apply_async()``, ``chord(h)(body)``),
``AsyncResult(...)``, ``GroupResult(...)``/``GroupResult.restore(...)``, ``ResultSet(...)``,
``app.AsyncResult(...)``, ``task.AsyncResult(...)`` or ``self.AsyncResult(...)``, or its
``.parent``. Local variables are
followed in straight-line code. Not reported: calls inside ``with allow_join_result():``, calls
passing ``disable_sync_subtasks=False``, calls outside tasks, and ``.get()`` on anything else
(``dict.get``, ``requests.get``, ``session.get``, ``cache.get``).

## Why is this bad?
A worker process that blocks on another task's result can deadlock the pool: every process may
end up waiting for tasks that no free process can run. Celery therefore refuses it. Observed on
Celery 5.7.0 with a worker in its own process (``celery worker -P solo`` and ``-P prefork``):
``add.delay(1, 2).get(timeout=5)``, ``.wait()``, ``group(...).apply_async().join()``,
``.join_native()``, ``.collect()`` and ``AsyncResult(task_id).get()`` inside a task all failed
the task with ``RuntimeError: Never call result.get() within a task! See
https://docs.celeryq.dev/en/latest/userguide/tasks.html#avoid-launching-synchronous-subtasks``.
The escape hatches only move the problem: under ``with allow_join_result():`` the same task
succeeded on a 2-process prefork worker but timed out on a solo worker, whose only process was
busy waiting for the subtask it should have run. (``celery.contrib.testing.worker`` disables
the guard, so tests run with it pass.)

## Example
```python
@app.task
def checkout(order_id):
    total = price_order.delay(order_id).get(timeout=10)
    return charge(order_id, total)
```

## How to fix
Let Celery pass the result instead of waiting for it: chain the work,
```python
chain(price_order.s(order_id), charge.s(order_id)).delay()
```
or, inside a ``bind=True`` task, replace the task by the canvas with
``raise self.replace(price_order.s(order_id) | charge.s(order_id))``.
"""
from __future__ import annotations

from typing import Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.origins import origin
from celery_chain_lint.index.symbols import AppSym, MemberSym, TaskSym, celery_name
from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.replay import Replay, WaitCall, task_replay

WAIT_METHODS = ("get", "wait", "join", "join_native", "collect")
RESULT_CLASSES = ("AsyncResult", "GroupResult", "ResultSet")
RESULT_ORIGINS = ("celery.result.AsyncResult", "celery.result.GroupResult",
                  "celery.result.ResultSet", "celery.result.AsyncResult.restore",
                  "celery.result.GroupResult.restore")
APPLY_METHODS = ("delay", "apply_async")

_APP = """\
from celery import Celery, chain, group
from celery.result import AsyncResult, allow_join_result
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def add(x, y):
    return x + y
"""


class WaitInTask(Rule):
    code = "CCL006"
    name = "wait-in-task"
    summary = "a task waits for another task's result (.get(), .join(), .wait())"

    VALID = [
        _APP + '@app.task\ndef outer():\n    with allow_join_result():\n'
               '        return add.delay(1, 2).get(timeout=5)\n',
        _APP + 'def view():\n    return add.delay(1, 2).get(timeout=5)\n',
        _APP + '@app.task\ndef lookup(d):\n    return d.get("key")\n',
        _APP + '@app.task\ndef outer():\n'
               '    return add.delay(1, 2).get(disable_sync_subtasks=False)\n',
        _APP + '@app.task\ndef outer():\n    res = add.delay(1, 2)\n    return res.id\n',
    ]
    INVALID = [
        _APP + '@app.task\ndef outer():\n    res = add.delay(1, 2)\n'
               '    return res.get(timeout=5)  # expect: CCL006\n',
        _APP + '@app.task\ndef outer():\n'
               '    return group(add.s(1, 1), add.s(2, 2)).apply_async().join()  # expect: CCL006\n',
        _APP + '@app.task\ndef outer(task_id):\n'
               '    return AsyncResult(task_id).wait()  # expect: CCL006\n',
    ]

    def check(self, project):
        builder = project.builder
        for task in project.all_tasks:
            function = task.function
            if function is None:
                continue
            bound = task.self_name
            for site in function.calls:
                call = site.call
                if not (isinstance(call.func, ir.Attribute) and call.func.attr in WAIT_METHODS):
                    continue
                source = _result_source(project, call.func.value, task.module, builder, bound)
                if source is None:
                    continue
                if _escaped(project, site, call, task.module):
                    continue
                yield self._finding(task, call, source)

    def _finding(self, task, call: ir.Call, source):
        kind, awaited = source
        method = call.func.attr
        message = (f"{task.display} calls .{method}() on {kind} inside the task: Celery raises "
                   f"RuntimeError('Never call result.get() within a task!') on the worker "
                   f"(and waiting in a worker can deadlock the pool); chain the work instead "
                   f"(... | next_step.s()) or use self.replace(canvas)")
        awaited_task = task_replay(awaited) if hasattr(awaited, "describe") else None
        replay = Replay(task=task_replay(task), wait=WaitCall(
            method, kind, awaited_task, call.span.line if call.span else None))
        return self.finding(task.path, call.span, message, replay=replay)


def _result_source(project, expr: ir.Expr, module: str, builder, bound: Optional[str] = None,
                   depth: int = 0):
    """(description, awaited task or None) when ``expr`` is a Celery result, else None.
    ``bound`` names the task's ``self`` parameter (``self.AsyncResult(task_id)``)."""
    if depth > 10:
        return None
    if isinstance(expr, ir.Attribute) and expr.attr == "parent":
        return _result_source(project, expr.value, module, builder, bound, depth + 1)
    if not isinstance(expr, ir.Call):
        return None
    func = expr.func
    resolver = project.resolver
    if isinstance(func, ir.Attribute) and func.attr in APPLY_METHODS:
        symbol = resolver.resolve(func.value, module)
        if isinstance(symbol, TaskSym):
            return f"the result of {symbol.task.display}.{func.attr}()", symbol.task
        canvas = builder.build(func.value, module)
        if canvas is not None and type(canvas).__name__ != "UnknownNode":
            return f"the result of an applied canvas (.{func.attr}())", None
        return None
    if isinstance(func, ir.Attribute) and func.attr in RESULT_CLASSES:
        if bound is not None and isinstance(func.value, ir.Opaque) \
                and func.value.kind == "local" and func.value.text == bound:
            return f"{bound}.{func.attr}(...)", None
        owner = resolver.resolve(func.value, module)
        if isinstance(owner, (AppSym, TaskSym)):
            return f"{func.attr}(...)", None
    symbol = resolver.resolve(func, module)
    if celery_name(symbol) in RESULT_CLASSES or origin(resolver, func, module) in RESULT_ORIGINS:
        return f"{ir.dotted_name(func) or 'AsyncResult'}(...)", None
    if isinstance(symbol, MemberSym) and isinstance(symbol.owner, AppSym) \
            and symbol.name in RESULT_CLASSES:
        return f"{symbol.name}(...)", None
    # ``chord(header)(body)``, ``group(...)()``: a canvas applied by calling it (calling a
    # signature runs the task inline and returns its value: not a result).
    canvas = builder.build_any(func, module)
    if canvas is not None and type(canvas).__name__ in ("ChainNode", "GroupNode", "ChordNode",
                                                         "_ChordHeader"):
        return "the result of an applied canvas", None
    return None


def _escaped(project, site, call: ir.Call, module: str) -> bool:
    """``with allow_join_result():`` around it, or ``disable_sync_subtasks=False``."""
    flag = call.keyword("disable_sync_subtasks")
    if flag is not None:
        value = literal(flag, MISSING)
        if value is MISSING or value is False:
            return True
    for item in site.with_items:
        target = item.func if isinstance(item, ir.Call) else item
        symbol = project.resolver.resolve(target, module)
        name = celery_name(symbol) or origin(project.resolver, target, module) or \
            ir.dotted_name(target) or ""
        if name.split(".")[-1] == "allow_join_result":
            return True
    return False
