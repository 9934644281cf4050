"""CCL020 arguments-to-immutable: a canvas is applied with arguments that only immutable tasks would take.

## What it does
Flags ``chain(a.si(), b.s()).delay(5)``, ``chain(a.s().set(immutable=True), b.s())(5)``,
``group(a.si(1), b.si(2)).apply_async((5,))`` and ``add.si(1, 2).delay(5)``: a canvas applied
with positional or keyword arguments when every task those arguments are given to (a chain's
first task, each member of a group or of a chord's header) is immutable. Execution options
among the keywords are CCL019's.

## Why is this bad?
Applying a canvas with arguments merges them into its first tasks (``Signature._merge``), and
an immutable signature keeps its own arguments: the values are dropped without an error.
Observed on Celery 5.7.0 (Redis broker and backend): ``chain(add.si(1, 2), add.s(3)).delay(5)``
ran ``add(1, 2)`` then ``add(3, 3)`` and returned 6; the 5 reached no task. The same with
``apply_async((5,), {"y": 1})``, ``.set(immutable=True)`` and a group of ``.si()`` members.

## Example
```python
chain(load.si(), transform.s()).delay(dataset_id)   # load() never sees dataset_id
```

## How to fix
Let the first task take the arguments, or pass them where they are used:
```python
chain(load.s(), transform.s()).delay(dataset_id)
chain(load.si(dataset_id), transform.s()).delay()
```
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator, List, Tuple

from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    GroupNode,
    SignatureNode,
    Value,
    Workflow,
    argument_receivers,
    kind_of,
    task_display,
)
from celery_chain_lint.workflow.options import EXECUTION_OPTIONS
from celery_chain_lint.workflow.replay import Receiver, Replay, workflow_replay

_APP = """\
from celery import Celery, chain, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def add(x, y):
    return x + y

@app.task
def total(values):
    return sum(values)
"""
# The applications that merge their arguments into the canvas's first tasks. A group's
# ``__call__`` takes positional arguments (its keywords are options); a chord's takes its body.
_MERGING = ("delay", "apply_async", "apply")


class ArgumentsToImmutable(Rule):
    code = "CCL020"
    name = "arguments-to-immutable"
    summary = ("a canvas is applied with arguments, but the tasks that would receive them are "
               "immutable (.si()): the arguments are silently dropped")

    VALID = [
        _APP + "chain(add.s(1), add.s(3)).delay(2)\n",
        _APP + "chain(add.si(1, 2), add.s(3)).delay()\n",
        _APP + "group(add.si(1, 2), add.s(3)).delay(4)\n",
        _APP + "chain(add.si(1, 2), add.s(3)).apply_async(countdown=5)\n",
        _APP + "chain(add.si(1, 2), add.s(3)).delay(*values)\n",
        _APP + "chain(add.si(1, 2), add.s(3)).apply_async(args)\n",
        _APP + "chord([add.si(1, 2)])(total.s())\n",
    ]
    INVALID = [
        _APP + "chain(add.si(1, 2), add.s(3)).delay(5)  # expect: CCL020\n",
        _APP + "chain(add.s(1, 2).set(immutable=True), add.s(3))(5)  # expect: CCL020\n",
        _APP + "group(add.si(1, 2), add.si(3, 4)).apply_async((5,))  # expect: CCL020\n",
        _APP + "(add.si(1, 2) | add.s(3)).apply_async(kwargs={'y': 1})  # expect: CCL020\n",
        _APP + "add.si(1, 2).delay(5)  # expect: CCL020\n",
    ]

    def check(self, project) -> Iterator:
        for workflow in project.workflows:
            given = _arguments_given(workflow)
            if not given:
                continue
            receivers = argument_receivers(workflow.canvas)
            if not receivers or not all(r.immutable for r in receivers):
                continue
            yield self.finding(workflow.module.path, workflow.application.span,
                               self._message(workflow, given, receivers),
                               replay=_replay(workflow, receivers))

    @staticmethod
    def _message(workflow: Workflow, given: List[str], receivers: List[SignatureNode]) -> str:
        kind = kind_of(workflow.canvas)
        how = workflow.application.how
        method = f".{how}()" if how != "call" else "call"
        values = ", ".join(given)
        names = sorted({task_display(r) for r in receivers})
        if kind == "signature":
            who = f"the signature of {names[0]} is immutable"
        elif kind == "chain":
            who = f"its first task {names[0]} is immutable"
        else:
            who = f"every member receiving them ({', '.join(names)}) is immutable"
        return (f"the {kind}'s {method} passes ({values}), but {who}: Celery drops the "
                f"arguments without an error and they reach no task; use .s() where they "
                f"should arrive, or pass them to the signature that needs them")


def _arguments_given(workflow: Workflow) -> List[str]:
    """The source text of the task arguments the canvas is applied with (not options)."""
    application = workflow.application
    if application is None or application.args is None or application.kwargs is None:
        return []
    canvas = workflow.canvas
    how = application.how
    keywords: Tuple[Tuple[str, Value], ...] = application.kwargs
    if how == "delay" or how == "call":
        keywords = tuple((k, v) for k, v in keywords if k not in EXECUTION_OPTIONS)
    if how == "call":
        if isinstance(canvas, GroupNode):
            keywords = ()
        elif not isinstance(canvas, ChainNode):
            return []
    elif how not in _MERGING:
        return []
    return [v.text for v in application.args] + [f"{k}={v.text}" for k, v in keywords]


def _replay(workflow: Workflow, receivers: List[SignatureNode]) -> Replay:
    return replace(workflow_replay(workflow), receivers=tuple(
        Receiver(getattr(r.task, "name", None), r.span.line if r.span else None)
        for r in receivers))
