"""CCL009 errback-receives-task-id: an errback expects the exception but will get a task id.

## What it does
Flags an errback (``link_error=``, ``.link_error()``, ``.on_error()``) that Celery will send as
a task with the failed task's id, while the parameter that receives that id is named for the
exception or the request (``exc``, ``error``, ``request``, ``einfo``...): a function with one
positional parameter, a ``bind=True`` task, a class-based task, or a signature whose stored
arguments leave one positional parameter. Also, whatever the names, a ``bind=True`` or
class-based errback whose only positional parameter is ``*args``
(``def on_error(self, *args, backup=None)``): the id is bound to ``*args``, which will be
``(task_id,)``, never the ``(request, exc, traceback)`` a function errback taking ``*args`` is
called with. Errbacks whose arguments do not bind at all are CCL001/CCL002's findings.

## Why is this bad?
When a task fails, the worker (``Backend._call_task_errbacks``) calls an errback inline as
``errback(request, exc, traceback)`` only if it is a function task, not ``bind=True``, that
still has more than one positional parameter once its stored arguments are bound (Celery 5.7
counts ``partial(header, *args, **kwargs)``). Every other errback is published as a new task
with ``(failed_task_id,)`` prepended. Nothing fails: the errback runs, and its ``exc``
parameter holds a string like ``"4ad0a895-..."``. Observed on Celery 5.7.0:
``def on_fail(exc)`` got ``exc='4ad0a895-7de4-430c-a22d-c5b048583d53'`` (a ``str``);
``bind=True`` ``on_fail(self, request, exc=None, traceback=None)`` got the id as ``request``
and ``exc=None``; ``on_fail(exc, label)`` linked as ``on_fail.s("payment")`` got the id as
``exc``. Error reporting built on it reports task ids, not errors.

## Example
```python
@app.task
def on_fail(exc):
    sentry.capture_exception(exc)        # exc is a task id string

charge.apply_async((42,), link_error=on_fail.s())
```

## How to fix
Take the three arguments Celery passes to inline errbacks, without ``bind=True``:
```python
@app.task
def on_fail(request, exc, traceback):
    sentry.capture_exception(exc)
```
or keep one parameter, name it for what it is (``task_id``) and look the failure up with
``AsyncResult(task_id)``.
"""
from __future__ import annotations

import re

from celery_chain_lint.workflow.binding import bind
from celery_chain_lint.facts.model import POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, VAR_POSITIONAL
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (SignatureNode, errback_invocation,
                                              raises_at_once, where)
from celery_chain_lint.workflow.replay import invocation_replay

# Parameter names that say "I expect the exception (or the request/traceback)".
EXCEPTION_NAMES = re.compile(
    r"^(e|ex|exc|exception|err|error|failure|request|req|context|ctx|einfo|exc_info|"
    r"traceback|tb)$|_(exc|exception|err|error)$|^(exc|exception|error)_"
)

_APP = """\
from celery import Celery
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def charge(order_id):
    raise RuntimeError("declined")

@app.task
def on_fail(exc):
    return str(exc)

@app.task
def on_fail_inline(request, exc, traceback):
    return str(exc)

@app.task
def log_failure(task_id):
    return task_id

@app.task(bind=True)
def on_fail_bound(self, request, exc=None, traceback=None):
    return str(exc)

@app.task
def on_fail_labelled(exc, label):
    return label

@app.task(bind=True)
def on_error_any(self, *args, backup=None):
    return args

@app.task
def on_error_inline(*args):
    return args
"""


class ErrbackReceivesTaskId(Rule):
    code = "CCL009"
    name = "errback-receives-task-id"
    summary = ("an errback expects the exception but Celery sends it the failed task's id "
               "(one positional parameter, bind=True, or a class-based task)")

    VALID = [
        _APP + "charge.apply_async((1,), link_error=on_fail_inline.s())\n",
        _APP + "charge.apply_async((1,), link_error=log_failure.s())\n",
        _APP + 'charge.apply_async((1,), link_error=on_fail.si("payment"))\n',
        _APP + "charge.s(1).on_error(on_fail_inline.s())\n",
        _APP + "charge.s(1).on_error(on_error_inline.s())\n",
    ]
    INVALID = [
        _APP + "charge.apply_async((1,), link_error=on_fail.s())  # expect: CCL009\n",
        _APP + "charge.s(1).on_error(on_fail_bound.s())  # expect: CCL009\n",
        _APP + 'charge.s(1).on_error(on_fail_labelled.s("payment"))  # expect: CCL009\n',
        _APP + "charge.apply_async((1,), link_error=on_error_any.s())  # expect: CCL009\n",
    ]

    def check(self, project):
        for workflow in project.workflows:
            if raises_at_once(workflow):
                continue  # ``group.apply_async(link_error=...)`` raises: CCL010
            for callback in workflow.callbacks:
                errback = callback.callback
                if callback.kind != "error" or not isinstance(errback, SignatureNode):
                    continue
                finding = self._check(workflow, errback)
                if finding is not None:
                    yield finding

    def _check(self, workflow, errback: SignatureNode):
        task = errback.task
        if task is None or task.params is None or not errback.args_known:
            return None
        invocation = errback_invocation(workflow, errback)
        if invocation.received != "the failed task's id" or not invocation.from_parent:
            return None  # called inline with (request, exc, traceback), or immutable
        if bind(task.params, len(invocation.positional()),
                [k for k, _ in invocation.keywords()], True) is not None:
            return None  # does not bind: CCL001/CCL002 report it
        slots = [p for p in task.params.items if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
        varargs = [p for p in task.params.items if p.kind == VAR_POSITIONAL]
        if not slots and varargs:
            # ``bind=True`` ``on_error(self, *args)``: the id is bound to ``*args``, which
            # reads as a wish to get whatever Celery passes, (request, exc, traceback) inline;
            # it gets ``(task_id,)``. Said from the binding, whatever the names.
            return self._varargs(workflow, errback, invocation, varargs[0].name)
        if not slots or not EXCEPTION_NAMES.search(slots[0].name):
            return None  # ``log_failure(task_id)``: the convention is used on purpose
        receiver = slots[0].name
        if task.bind:
            why = "it is bind=True, so Celery never calls it with (request, exc, traceback)"
            how = f"drop bind=True and declare {task.display}(request, exc, traceback)"
        elif task.class_facts is not None:
            why = "it is a class-based task, which Celery never calls inline"
            how = f"use a function task declared as {task.display}(request, exc, traceback)"
        elif errback.args or errback.kwargs:
            why = "its stored arguments leave it one positional parameter"
            how = f"declare {task.display}(request, exc, traceback, <stored arguments>)"
        else:
            why = "it has one positional parameter"
            how = f"declare {task.display}(request, exc, traceback)"
        expected = ("the request" if receiver in ("request", "req", "context", "ctx")
                    else "the traceback" if receiver in ("traceback", "tb") else "the exception")
        message = (f"errback {task.display}{task.params.render()} is sent as a task with the "
                   f"failed task's id ({why}): {receiver!r} will receive a task id string, "
                   f"not {expected}; {how}, or name the parameter task_id")
        return self.finding(where(workflow, errback), errback.span, message,
                            replay=invocation_replay(invocation))

    def _varargs(self, workflow, errback: SignatureNode, invocation, name: str):
        task = errback.task
        if task.bind:
            why = "it is bind=True, so Celery never calls it inline with (request, exc, traceback)"
            how = f"drop bind=True and declare {task.display}(request, exc, traceback)"
        else:
            why = "it is a class-based task, which Celery never calls inline"
            how = f"use a function task declared as {task.display}(request, exc, traceback)"
        received = ", ".join(v.text for v in invocation.positional())
        message = (f"errback {task.display}{task.params.render()} is sent as a task with the "
                   f"failed task's id ({why}): *{name} will be ({received},), a task id string "
                   f"and nothing else: no exception, no request, no traceback; {how}, or "
                   f"declare {task.display}(self, task_id) and look the failure up with "
                   f"AsyncResult(task_id)")
        return self.finding(where(workflow, errback), errback.span, message,
                            replay=invocation_replay(invocation))
