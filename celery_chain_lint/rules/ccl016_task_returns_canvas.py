"""CCL016 task-returns-canvas: a task returns a signature or canvas instead of running it.

## What it does
Flags a ``return`` statement in a task whose value is a signature or canvas built there and
not applied: ``return chain(a.s(), b.s())``, ``return group(...)``, ``return a.s() | b.s()``,
``return sig`` for a ``sig`` built in the body. ``return self.replace(canvas)``,
``return canvas.delay()`` and returning a canvas from a plain function are not reported.

## Why is this bad?
A task's return value is its result, nothing more: Celery does not run a canvas it receives
that way. A signature is a ``dict`` subclass, so the JSON serializer stores it without
complaint and the task ends SUCCESS. Observed on Celery 5.7.0: a task returning
``chain(step.s(x), step.s())`` finished SUCCESS with the result
``{'task': 'celery.chain', 'args': [], 'kwargs': {'tasks': [...]}, ...}`` and ``step`` never
ran. The work the task was meant to start silently never happens.

## Example
```python
@app.task
def start_settlement(batch_id):
    return chain(collect.s(batch_id), settle.s())     # nothing runs
```

## How to fix
Replace the task with the canvas, so its result becomes the canvas's result
(``bind=True``), or apply it:
```python
@app.task(bind=True)
def start_settlement(self, batch_id):
    raise self.replace(chain(collect.s(batch_id), settle.s()))
```
"""
from __future__ import annotations

from typing import Dict, Iterator, Tuple

from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import ChainNode, ChordNode, GroupNode, SignatureNode, kind_of
from celery_chain_lint.workflow.replay import workflow_replay

_APP = """\
from celery import Celery, chain, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def collect(batch_id):
    return [batch_id]

@app.task
def settle(items):
    return len(items)
"""


class TaskReturnsCanvas(Rule):
    code = "CCL016"
    name = "task-returns-canvas"
    summary = ("a task returns a signature or canvas instead of applying it or using "
               "self.replace(): nothing runs")

    VALID = [
        _APP + "@app.task(bind=True)\ndef start(self, batch_id):\n"
               "    raise self.replace(chain(collect.s(batch_id), settle.s()))\n",
        _APP + "@app.task\ndef start(batch_id):\n"
               "    return chain(collect.s(batch_id), settle.s()).delay().id\n",
        _APP + "def build(batch_id):\n    return chain(collect.s(batch_id), settle.s())\n",
    ]
    INVALID = [
        _APP + "@app.task\ndef start(batch_id):\n"
               "    return chain(collect.s(batch_id), settle.s())  # expect: CCL016\n",
        _APP + "@app.task\ndef start(batch_id):\n"
               "    flow = collect.s(batch_id) | settle.s()\n"
               "    return flow  # expect: CCL016\n",
    ]

    def check(self, project) -> Iterator:
        tasks: Dict[Tuple[str, str], object] = {}
        for task in project.all_tasks:
            if task.function is not None:
                tasks[(task.module, task.function.qualname)] = task
        for workflow in project.workflows:
            if workflow.root_kind != "return" or workflow.applied or workflow.callbacks:
                continue
            if not isinstance(workflow.canvas, (ChainNode, GroupNode, ChordNode, SignatureNode)):
                continue
            task = tasks.get((workflow.module.module, workflow.scope))
            if task is None:
                continue
            function = task.function
            returned = [span for span, value in function.returns if value is workflow.expr]
            if not returned:
                continue  # the canvas is part of what is returned, not all of it
            kind = kind_of(workflow.canvas)
            how = "raise self.replace(...)" if task.bind or task.class_facts is not None \
                else "bind=True and raise self.replace(...)"
            message = (f"{task.display} returns a {kind} instead of running it: Celery stores "
                       f"it as the task's result (a plain dict) and none of its tasks run; "
                       f"replace the task with it ({how}) or apply it with .delay() and "
                       f"return its id")
            yield self.finding(workflow.module.path, returned[0], message,
                               replay=workflow_replay(workflow))
