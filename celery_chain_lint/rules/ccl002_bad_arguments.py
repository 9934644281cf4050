"""CCL002 bad-arguments: a task will be called with arguments that do not bind.

## What it does
Replays Python's argument binding for every signature whose arguments are complete: the first
link of a chain that is applied, ``.si()`` links, links after ``.s()`` (with the previous result
they receive), group members, chord headers and bodies, ``link`` callbacks, ``task.delay(...)``,
``task.apply_async(args, kwargs)``, ``signature("registered.name", args=..., kwargs=...)``,
``app.signature("registered.name", ...)`` and ``app.send_task("registered.name", args=...,
kwargs=...)`` (the name as registered: the module's name and the function's, or ``name=``
given to the decorator; a name no task of the analysed code has, another service's, is not
followed).
It reports a missing required argument, too many positional arguments, an unexpected keyword or
two values for one parameter. A signature that is only built (``sig = fetch.s()``) may still get
arguments when it is applied: there, only errors that more arguments cannot cure are reported.

## Why is this bad?
Tasks check their arguments when a message is published (``typing=True``, the default). For
``delay`` that raises in the caller; for a chain link it raises inside the worker when the
previous step finishes, marking that step FAILURE and silently dropping the rest of the chain.
With ``typing=False``, or sent by name with ``send_task`` (which knows no signature to check),
the task itself fails on the worker. Either way it happens in production.

## Example
```python
charge.s(42).delay()          # charge(order_id, amount): missing 'amount'
chain(fetch.s(url), parse.si(1, 2)).delay()   # parse(text): 2 positional arguments for 1
```

## How to fix
Pass exactly the arguments the task declares; in a chain remember that a ``.s()`` link also
receives the previous result as its first argument.
"""
from __future__ import annotations

from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.options import explained_by_options
from celery_chain_lint.workflow.model import where
from celery_chain_lint.workflow.replay import invocation_replay

_APP = """\
from celery import Celery, chain, group, signature
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def charge(order_id, amount):
    return amount

@app.task
def parse(text):
    return text
"""


class BadArguments(Rule):
    code = "CCL002"
    name = "bad-arguments"
    summary = "a task will be called with arguments that do not bind to its parameters"

    VALID = [
        _APP + "charge.delay(42, 10)\n",
        _APP + "sig = charge.s(42)\nsig.delay(10)\n",
        _APP + "chain(charge.s(1, 2), parse.s()).delay()\n",
        _APP + "charge.apply_async(args, kwargs)\n",
        _APP + 'app.send_task("example.charge", args=(1, 2))\n',
        _APP + 'app.send_task("billing.invoice", args=(1, 2, 3))\n',
    ]
    INVALID = [
        _APP + "charge.delay(42)  # expect: CCL002\n",
        _APP + "chain(charge.s(1, 2), parse.si(1, 2)).delay()  # expect: CCL002\n",
        _APP + "group(parse.s(1, colour=2), parse.s(3)).delay()  # expect: CCL002\n",
        _APP + 'signature("example.charge", args=(1, 2, 3)).delay()  # expect: CCL002\n',
        _APP + 'app.send_task("example.charge", args=(1,))  # expect: CCL002\n',
    ]

    def check(self, project):
        for problem in project.argument_problems:
            if problem.si_was_meant:
                continue  # CCL001's finding
            if explained_by_options(problem.invocation):
                continue  # ``delay(..., countdown=60)``: CCL013's finding, with its fix
            invocation = problem.invocation
            message = (f"{problem.rendered_params()} will be called as {problem.rendered_call()}: "
                       f"{problem.error.reason}")
            yield self.finding(where(invocation.workflow, invocation.signature),
                               invocation.signature.span,
                               message, replay=invocation_replay(invocation))
