"""CCL013 options-as-arguments: an execution option is passed to the task as an argument.

## What it does
Flags ``task.delay(..., countdown=60)``, ``task.s(..., queue="slow")`` and ``task.si(...)``
with a keyword that is an ``apply_async`` execution option (``countdown``, ``eta``,
``expires``, ``queue``, ``priority``, ``link``, ``time_limit``...) which the task does not
declare as a parameter. For a task with ``**kwargs`` only the options no task would take for
itself are reported (``countdown``, ``eta``, ``expires``, ``link``, ``time_limit``...), and not
those its body reads by name (``kwargs.pop("eta")``).

## Why is this bad?
``delay(*args, **kwargs)`` is ``apply_async(args, kwargs)``: every keyword goes to the task,
none to the message; ``.s()``/``.si()`` store them as task keywords the same way. Observed on
Celery 5.7.0: ``add.delay(1, 2, countdown=60)`` raised
``TypeError: add() got an unexpected keyword argument 'countdown'`` when published
(``typing=True``, the default; in a chain the worker raises it when it publishes that link,
after the previous one ran); a task taking ``**kwargs`` ran at once, 0.5 s later instead of
60 s, with ``kwargs == {"countdown": 5}``: the delay, queue or expiry is silently ignored.

## Example
```python
send_reminder.delay(user_id, countdown=3600)        # runs now, or TypeError
chain(charge.s(order_id), receipt.s(queue="mail"))  # receipt gets queue="mail" as an argument
```

## How to fix
Give options to ``apply_async`` or ``.set()``:
```python
send_reminder.apply_async((user_id,), countdown=3600)
chain(charge.s(order_id), receipt.s().set(queue="mail"))
```
``--fix`` (unsafe: the option takes effect) rewrites a one-line call that way.
"""
from __future__ import annotations

from typing import Iterator, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.symbols import TaskSym
from celery_chain_lint.findings import Edit, Fix
from celery_chain_lint.rules.base import Invalid, Rule
from celery_chain_lint.workflow.options import (
    ARGUMENT_METHODS,
    accepts_any_keyword,
    mentioned_strings,
    misplaced_options,
)
from celery_chain_lint.workflow.model import where
from celery_chain_lint.workflow.replay import workflow_replay

_APP = """\
from celery import Celery, chain
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def add(x, y):
    return x + y

@app.task
def remind(user_id, **context):
    return user_id

@app.task
def route(order_id, queue="default"):
    return queue
"""
# Expressions that would change meaning inside a rebuilt argument list.
_NOT_REBUILT = ("lambda", "Yield", "NamedExpr", "Await")


class OptionsAsArguments(Rule):
    code = "CCL013"
    name = "options-as-arguments"
    summary = ("an execution option (countdown, queue, eta...) is passed to the task as an "
               "argument: TypeError, or silently ignored")
    fixable = True
    fix_safety = "unsafe"

    VALID = [
        _APP + "add.apply_async((1, 2), countdown=60)\n",
        _APP + 'add.s(1, 2).set(queue="slow").delay()\n',
        _APP + 'route.delay(1, queue="fast")\n',
        _APP + 'remind.delay(7, priority="high")\n',
    ]
    INVALID = [
        Invalid(_APP + "add.delay(1, 2, countdown=60)  # expect: CCL013\n",
                fixed=_APP + "add.apply_async((1, 2), countdown=60)  # expect: CCL013\n"),
        _APP + "remind.delay(7, countdown=3600)  # expect: CCL013\n",
        _APP + 'chain(add.s(1, 2), add.s(3, queue="slow")).delay()  # expect: CCL013\n',
    ]

    def check(self, project) -> Iterator:
        seen = set()
        for workflow in project.workflows:
            module = workflow.module.module
            for node in ir.walk(workflow.expr) if workflow.expr is not None else ():
                if not (isinstance(node, ir.Call) and isinstance(node.func, ir.Attribute)
                        and node.func.attr in ARGUMENT_METHODS and node.span is not None):
                    continue
                key = (where(workflow, node), node.span)
                if key in seen:
                    continue
                symbol = project.resolver.resolve(node.func.value, module)
                if not isinstance(symbol, TaskSym):
                    continue
                task = symbol.task
                keywords = [a.keyword for a in node.args if a.keyword]
                misplaced = misplaced_options(task, keywords, mentioned_strings(task))
                if not misplaced:
                    continue
                seen.add(key)
                yield self.finding(where(workflow, node), node.span,
                                   self._message(task, node, misplaced), self._fix(node, misplaced),
                                   replay=workflow_replay(workflow))

    @staticmethod
    def _message(task, call: ir.Call, misplaced) -> str:
        method = call.func.attr
        names = ", ".join(misplaced)
        noun = "is an execution option" if len(misplaced) == 1 else "are execution options"
        settings = ", ".join(f"{name}=..." for name in misplaced)
        if accepts_any_keyword(task):
            effect = (f"{task.display} takes **kwargs, so it receives {names} as an argument "
                      "and the option is silently ignored")
        elif task.class_facts is not None or task.literal_option("typing", True) is False:
            effect = f"{task.display}{task.params.render()} fails with TypeError on the worker"
        else:
            when = "when it is published" if method == "delay" else \
                "when this signature is published (in a chain, by the worker, after the " \
                "previous link ran)"
            effect = (f"{task.display}{task.params.render()} raises TypeError (unexpected "
                      f"keyword argument {misplaced[0]!r}) {when}")
        if method == "delay":
            how = f"use {task.display}.apply_async(args, kwargs, {settings})"
        else:
            how = f"use {task.display}.{method}(...).set({settings})"
        return f"{names} {noun} passed to the task by .{method}(): {effect}; {how}"

    @staticmethod
    def _fix(call: ir.Call, misplaced) -> Optional[Fix]:
        """Rebuild a one-line call: ``.apply_async((args), {kwargs}, opt=...)`` or ``.set()``."""
        span = call.span
        owner = call.func.value
        if call.has_splat or span.line != span.end_line:
            return None
        pieces = [owner] + [a.value for a in call.args]
        for piece in pieces:
            if piece.span is None or not _inside(piece.span, span) \
                    or not piece.text or len(piece.text) >= 57 \
                    or (isinstance(piece, ir.Opaque) and piece.kind in _NOT_REBUILT):
                return None
        positional = [a.value.text for a in call.args if not a.keyword]
        keywords = [(a.keyword, a.value.text) for a in call.args if a.keyword]
        task_keywords = [(k, v) for k, v in keywords if k not in misplaced]
        options = ", ".join(f"{k}={v}" for k, v in keywords if k in misplaced)
        method = call.func.attr
        if method == "delay":
            parts = []
            if positional or task_keywords:
                parts.append("(" + ", ".join(positional) + ("," if len(positional) == 1 else "")
                             + ")")
            if task_keywords:
                parts.append("{" + ", ".join(f"{k!r}: {v}" for k, v in task_keywords) + "}")
            parts.append(options)
            text = f"{owner.text}.apply_async({', '.join(parts)})"
            message = "Pass the options to apply_async()"
        else:
            arguments = positional + [f"{k}={v}" for k, v in task_keywords]
            text = f"{owner.text}.{method}({', '.join(arguments)}).set({options})"
            message = "Pass the options to .set()"
        return Fix(message, (Edit(span, text),), applicability="unsafe")


def _inside(inner, outer) -> bool:
    """``inner`` lies within the one-line ``outer``: written in this call, not substituted."""
    return (inner.line == inner.end_line == outer.line
            and outer.column <= inner.column and inner.end_column <= outer.end_column)
