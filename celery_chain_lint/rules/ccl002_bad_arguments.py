"""CCL002 bad-arguments: a task will be called with arguments that do not bind.

## What it does
Replays Python's argument binding for every signature whose arguments are complete: the first
link of a chain that is applied, ``.si()`` links, links after ``.s()`` (with the previous result
they receive), group members, chord headers and bodies, ``link`` callbacks, ``task.delay(...)``,
``task.apply_async(args, kwargs)``, ``signature("registered.name", args=..., kwargs=...)``,
``app.signature("registered.name", ...)`` and ``app.send_task("registered.name", args=...,
kwargs=...)`` (the name as registered: the module's name and the function's, or ``name=``
given to the decorator; a name no task of the analysed code has, another service's, is not
followed), and the items of ``task.map(items)``, ``task.starmap(items)``,
``task.chunks(items, n)``, ``xmap(task.s(), items)``, ``xstarmap(...)`` and ``chunks(task.s(),
items, n)`` when ``items`` is a literal list or tuple: ``map`` passes each item as ONE argument,
``starmap`` and ``chunks`` unpack it (``task(*item)``; only items written as a list or tuple are
checked).
It reports a missing required argument, too many positional arguments, an unexpected keyword or
two values for one parameter. A signature that is only built (``sig = fetch.s()``) may still get
arguments when it is applied: there, only errors that more arguments cannot cure are reported.

## Why is this bad?
Tasks check their arguments when a message is published (``typing=True``, the default). For
``delay`` that raises in the caller; for a chain link it raises inside the worker when the
previous step finishes, marking that step FAILURE and silently dropping the rest of the chain.
With ``typing=False``, or sent by name with ``send_task`` (which knows no signature to check),
the task itself fails on the worker. Either way it happens in production.

``map``, ``starmap`` and ``chunks`` call the task function inside Celery's own ``celery.map`` /
``celery.starmap`` tasks (``celery/app/builtins.py``: ``[task(item) for item in it]``,
``[task(*item) for item in it]``), so the TypeError is raised there, whatever ``typing`` says,
and that task fails; the signature given to ``xmap``/``xstarmap``/``chunks`` is reduced to its
task (``signature(task).type``), so its own arguments are not passed. Observed on Celery 5.7.0
(memory broker, cache backend, solo worker), with ``add(x, y)``: ``add.map([1, 2])``,
``add.starmap([(1,), (3,)])`` and ``xmap(add.s(10), [1, 2])`` each ended FAILURE with
``TypeError: add() missing 1 required positional argument: 'y'``; ``add.chunks([(1,), (2,)], 1)``
returned two such TypeErrors, one per ``celery.starmap`` chunk; ``add.starmap([(1, 2), (3, 4)])``
returned ``[3, 7]``.

## Example
```python
charge.s(42).delay()          # charge(order_id, amount): missing 'amount'
chain(fetch.s(url), parse.si(1, 2)).delay()   # parse(text): 2 positional arguments for 1
charge.chunks([(1,), (2,)], 10).delay()       # each chunk runs charge(*item): charge(1)
```

## How to fix
Pass exactly the arguments the task declares; in a chain remember that a ``.s()`` link also
receives the previous result as its first argument. With ``map`` each item is one argument:
use ``starmap`` (or ``chunks``) with tuples for a task of several parameters.
"""
from __future__ import annotations

from dataclasses import replace

from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.mapped import BUILTIN, replay_items
from celery_chain_lint.workflow.options import explained_by_options
from celery_chain_lint.workflow.model import where
from celery_chain_lint.workflow.replay import (Replay, ReplayMap, ReplayValue, ReplayWorkflow,
                                               invocation_replay, replay_name, task_replay)

_APP = """\
from celery import Celery, chain, chunks, group, signature, xmap, xstarmap
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
        _APP + "charge.starmap([(1, 2), (3, 4)]).delay()\n",
        _APP + "charge.chunks([(1, 2), [3, 4]], 1).delay()\n",
        _APP + "parse.map(['a', 'b']).delay()\n",
        _APP + "charge.map(pairs).delay()\n",
        _APP + "charge.starmap([pair, (3, 4)]).delay()\n",
        _APP + "import itertools\nitertools.starmap(charge, [(1,)])\nlist(map(parse, [1, 2]))\n",
    ]
    INVALID = [
        _APP + "charge.delay(42)  # expect: CCL002\n",
        _APP + "chain(charge.s(1, 2), parse.si(1, 2)).delay()  # expect: CCL002\n",
        _APP + "group(parse.s(1, colour=2), parse.s(3)).delay()  # expect: CCL002\n",
        _APP + 'signature("example.charge", args=(1, 2, 3)).delay()  # expect: CCL002\n',
        _APP + 'app.send_task("example.charge", args=(1,))  # expect: CCL002\n',
        _APP + "charge.map([1, 2]).delay()  # expect: CCL002\n",
        _APP + "parse.starmap([(1, 2)]).delay()  # expect: CCL002\n",
        _APP + "charge.chunks([(1,), (2,)], 1).delay()  # expect: CCL002\n",
        _APP + "xmap(charge.s(10), [1, 2]).delay()  # expect: CCL002\n",
        _APP + "chunks(parse.s(), [(1, 2)], 1).delay()  # expect: CCL002\n",
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
        for problem in project.mapped_problems:
            mapped = problem.mapped
            yield self.finding(mapped.path, mapped.call.span, _mapped_message(problem),
                               replay=_mapped_replay(mapped))


def _mapped_message(problem) -> str:
    mapped = problem.mapped
    how = ("calls it with each item as its one argument" if mapped.how == "map"
           else "unpacks each item into its arguments")
    count = len(mapped.items)
    which = ("every item" if problem.failing == count
             else f"{problem.failing} of {count} items")
    message = (f"{problem.rendered_params()} will be called as {problem.rendered_call()} "
               f"by {BUILTIN[mapped.how]}, which {how}: {problem.error.reason} "
               f"({which}; the TypeError fails that task on the worker)")
    if mapped.dropped:
        message += (f"; the arguments of {mapped.dropped} are not passed: Celery keeps only "
                    f"its task")
    return message


def _mapped_replay(mapped) -> Replay:
    name = replay_name(mapped.task)
    items = tuple(ReplayValue.from_json(item) for item in replay_items(mapped))
    canvas = ReplayMap(name, mapped.how, items, mapped.size, flagged=True)
    return Replay(workflow=ReplayWorkflow(canvas),
                  tasks={name: replace(task_replay(mapped.task), name=name)},
                  flagged_task=name)
