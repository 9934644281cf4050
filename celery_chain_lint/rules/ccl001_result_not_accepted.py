"""CCL001 result-not-accepted: a chain link cannot take the previous task's result.

## What it does
Flags a ``.s()`` signature that receives the previous step's result (in a chain, a chord
body, a ``link`` callback) when its task cannot accept that extra leading positional argument,
although the signature's own arguments alone would bind.

## Why is this bad?
Celery passes each step's return value as the *first* positional argument of the next
mutable signature (``Signature._merge``: ``args = (result,) + sig.args``). When the task has no
room for it, the worker raises ``TypeError`` while publishing the next step, after the previous
task's body already ran: that task is marked FAILURE although its work is done, and the rest of
the chain never runs. Nothing fails when the canvas is built, so tests that only build it pass.

## Example
```python
chain(add.s(2, 2), log_done.s("completed")).delay()  # log_done(message)
```
runs ``log_done(4, "completed")``: 2 positional arguments for 1 parameter.

## How to fix
Make the signature immutable with ``.si()`` when the step does not need the result:
```python
chain(add.s(2, 2), log_done.si("completed")).delay()
```
or give the task a parameter for the result. ``--fix`` rewrites ``.s(`` to ``.si(``.
"""
from __future__ import annotations

from celery_chain_lint.findings import Edit, Fix

from celery_chain_lint.rules.base import Invalid, Rule
from celery_chain_lint.workflow.model import where
from celery_chain_lint.workflow.replay import invocation_replay

_APP = """\
from celery import Celery, chain, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def add(x, y):
    return x + y

@app.task
def log_done(message):
    return message
"""


class ResultNotAccepted(Rule):
    code = "CCL001"
    name = "result-not-accepted"
    summary = "a .s() link cannot take the previous result it receives; .si() was meant"
    fixable = True

    VALID = [
        _APP + 'chain(add.s(2, 2), log_done.si("completed")).delay()\n',
        _APP + "chain(add.s(2, 2), add.s(4)).delay()\n",
        _APP + 'add.s(1, 2).delay()\n',
    ]
    INVALID = [
        Invalid(_APP + 'chain(add.s(2, 2), log_done.s("completed")).delay()  # expect: CCL001\n',
                fixed=_APP + 'chain(add.s(2, 2), log_done.si("completed")).delay()'
                             '  # expect: CCL001\n'),
        _APP + 'workflow = add.s(2, 2) | log_done.s("completed")  # expect: CCL001\n',
        _APP + 'chord([add.s(1, 1), add.s(2, 2)], log_done.s("all done")).delay()  # expect: CCL001\n',
    ]

    def check(self, project):
        for problem in project.argument_problems:
            if not problem.si_was_meant:
                continue
            signature = problem.invocation.signature
            task = signature.task
            message = (f"{problem.rendered_params()} will be called as {problem.rendered_call()}: "
                       f"{problem.error.reason}; use {task.display}.si(...) to ignore "
                       f"{problem.invocation.received}")
            fix = None
            if signature.via == "s" and signature.method_span is not None:
                fix = Fix(f"Use {task.display}.si(...)", (Edit(signature.method_span, "si"),))
            yield self.finding(where(problem.invocation.workflow, signature), signature.span, message,
                               fix, invocation_replay(problem.invocation))
