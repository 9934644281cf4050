"""CCL021 revoke-last-only: ``revoke()`` on a chain's or chord's result revokes one task of it.

## What it does
Flags ``.revoke()`` called on the result of applying a chain of several steps or a chord:
``chain(a.s(), b.s()).delay().revoke()``, or ``result = (a.s() | b.s()).apply_async()`` then
``result.revoke()`` in the same function (the analyser follows straight-line local
variables). A group's result is not reported: ``GroupResult.revoke()`` revokes every member.

## Why is this bad?
Applying a chain returns the ``AsyncResult`` of its LAST task (a chord: of its body); the earlier
tasks are reachable only through ``.parent``. ``AsyncResult.revoke()`` revokes that one id.
Observed on Celery 5.7.0 (Redis broker and backend): ``chain(slow.s(1, 1), slow.s(2),
add.s(3)).delay()`` revoked at once: both ``slow`` tasks ran and ended SUCCESS, only ``add`` was
REVOKED; a chord revoked at once ran its whole header, only the body was REVOKED. The work the
caller meant to cancel happens anyway.

## Example
```python
result = chain(download.s(url), resize.s(), publish.s()).delay()
result.revoke()          # download and resize still run
```

## How to fix
Revoke every task of the workflow, walking the results back through ``.parent``:
```python
node = result
while node is not None:
    node.revoke()
    node = node.parent
```
(For a chord, revoke the header's ``GroupResult`` too: ``result.parent.revoke()``.)
"""
from __future__ import annotations

from typing import Iterator, List, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    ChordNode,
    GroupNode,
    Node,
    SignatureNode,
    Workflow,
    signatures,
    task_display,
)
from celery_chain_lint.workflow.replay import workflow_replay

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


class RevokeLastOnly(Rule):
    code = "CCL021"
    name = "revoke-last-only"
    summary = ("revoke() on the result of a chain or chord revokes only its last task (or "
               "body): the earlier tasks still run")

    VALID = [
        _APP + "group(add.s(1, 2), add.s(3, 4)).delay().revoke()\n",
        _APP + "add.delay(1, 2).revoke()\n",
        _APP + "result = chain(add.s(1, 2), add.s(3)).delay()\nresult.parent.revoke()\n",
        _APP + "def f(result):\n    result.revoke()\n",
        _APP + "result = chain(add.s(1, 2), add.s(3)).delay()\nresult = other()\nresult.revoke()\n",
    ]
    INVALID = [
        _APP + "chain(add.s(1, 2), add.s(3)).delay().revoke()  # expect: CCL021\n",
        _APP + "def cancel():\n    result = (add.s(1, 2) | add.s(3)).apply_async()\n"
               "    result.revoke(terminate=True)  # expect: CCL021\n",
        _APP + "def cancel():\n    result = chord([add.s(1, 2)], total.s()).delay()\n"
               "    result.revoke()  # expect: CCL021\n",
    ]

    def check(self, project) -> Iterator:
        for facts, root, call in project.root_calls():
            if not _is_revoke_of_a_call(call):
                continue
            applied = project.builder.application(call.func.value, facts.module)
            if applied is None:
                continue
            canvas, application, callbacks = applied
            left_running = _left_running(canvas)
            if not left_running:
                continue
            workflow = Workflow(facts, root.scope, root.kind, canvas, application, callbacks,
                                call.func.value)
            yield self.finding(facts.path, call.span, self._message(canvas, left_running),
                               replay=workflow_replay(workflow))

    @staticmethod
    def _message(canvas: Node, left_running: List[SignatureNode]) -> str:
        names = _names(left_running)
        if isinstance(canvas, ChordNode):
            return ("a chord's result is its body's: revoke() revokes only the body, its "
                    f"header tasks ({names}) still run; revoke the header's GroupResult "
                    "(result.parent) too")
        return ("a chain's result is its last task's: revoke() revokes only that one, the "
                f"earlier tasks ({names}) still run; revoke each result walking back through "
                ".parent")


def _is_revoke_of_a_call(call: ir.Call) -> bool:
    """``X.revoke(...)`` where ``X`` is a call (an application, once locals are substituted)."""
    return isinstance(call.func, ir.Attribute) and call.func.attr == "revoke" \
        and isinstance(call.func.value, ir.Call)


def _left_running(canvas: Node) -> Optional[List[SignatureNode]]:
    """The signatures a revoke of the canvas's result leaves running; None when that result
    is the whole canvas's (a signature, a group) or the canvas is not known."""
    if isinstance(canvas, ChordNode) and canvas.body is not None \
            and canvas.header.parts:
        return list(signatures(canvas.header))
    if isinstance(canvas, ChainNode) and len(canvas.steps) >= 2:
        last = canvas.steps[-1]
        if isinstance(last, (ChainNode, ChordNode)) or not isinstance(
                last, (SignatureNode, GroupNode)):
            return None  # the result of a nested canvas: not followed
        earlier = [s for step in canvas.steps[:-1] for s in signatures(step)]
        return earlier or None
    return None


def _names(found: List[SignatureNode]) -> str:
    names = []
    for signature in found:
        name = task_display(signature)
        if name not in names:
            names.append(name)
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
