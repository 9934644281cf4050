"""CCL003 independent-chain: a chain whose links never use a previous result.

## What it does
Flags a chain of two or more links that all run the same task, in which no link after the first
consumes the result of the one before it: every later link is immutable (``.si()``,
``immutable=True``, ``.set(immutable=True)``) or its task takes no argument at all. That is a
fan-out written as a chain. Chains where some link takes the result, chains of one link, and
chains that contain a group (the step after a group is a chord body, a barrier) are not
reported.

Chains of *different* tasks that ignore each other's results (``charge.si(order) |
ship.si(order)``, or ``add.s(1, 2) | log_done.si("done")``, which is what CCL001 recommends) are
not reported by default: such a sequence usually orders side effects (ship after charging, log
after the work is done) that static analysis cannot see, and a group would break it. Set the
option ``mixed-tasks = true`` (``[tool.celery-chain-lint.independent-chain]``) to report those
too.

## Why is this bad?
A chain runs its links one after another: the worker publishes link *n+1* only when link *n*
has finished. When no link needs the previous result, that ordering buys nothing but latency:
the total time is the sum of all links instead of the longest one, and one failing link drops
every link after it although they did not depend on it. Observed on Celery 5.7.0 with a
3-thread worker and three tasks sleeping 1 s: ``chain(export.si("a"), export.si("b"),
export.si("c"))`` took 3.5 s, ``group(...)`` of the same signatures 1.5 s.

If a later link depends on a *side effect* of an earlier one (it reads what the previous task
wrote to the database), the order is real: keep the chain and mark the line with
``# noqa: CCL003``.

## Example
```python
chain(export.si("orders"), export.si("invoices"), export.si("refunds")).delay()
```

## How to fix
Run independent tasks with ``group``; if something must run after all of them, make it the
body of a chord:
```python
group(export.si("orders"), export.si("invoices"), export.si("refunds")).delay()
chord([export.si("orders"), export.si("invoices")], notify.si("exports done")).delay()
```
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from celery_chain_lint.facts.model import VAR_POSITIONAL
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    Node,
    SignatureNode,
    Workflow,
    nodes,
    task_display,
    where,
)
from celery_chain_lint.workflow.replay import ChainSpot, workflow_replay

_APP = """\
from celery import Celery, chain, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def export(name):
    return name

@app.task
def total(values):
    return sum(values)

@app.task
def ping():
    return "pong"
"""


def consumes_result(step: Node) -> bool:
    """Whether ``step``, placed after another step, does something with that step's result.

    Only a signature that is immutable or whose task takes no argument at all counts as not
    consuming; anything the analyser does not know is assumed to consume."""
    if isinstance(step, SignatureNode):
        if step.immutable:
            return False
        params = getattr(step.task, "params", None)
        if params is None:
            return True
        return any(p.kind in ("positional-only", "positional-or-keyword", VAR_POSITIONAL)
                   for p in params.items)
    return True


def chains(node: Node) -> Iterator[ChainNode]:
    """Every chain inside a canvas, outermost first."""
    return (n for n in nodes(node) if isinstance(n, ChainNode))


def independent(chain: ChainNode, mixed_tasks: bool = False) -> bool:
    steps = chain.steps
    if len(steps) < 2 or not all(isinstance(step, SignatureNode) for step in steps):
        return False  # a group inside makes the next step a chord body: a real barrier
    if any(step.task is None for step in steps):
        return False
    if not mixed_tasks and len({id(step.task) for step in steps}) > 1:
        return False  # different tasks in a row usually order side effects
    return not any(consumes_result(step) for step in steps[1:])


class IndependentChain(Rule):
    code = "CCL003"
    name = "independent-chain"
    summary = "a chain of one task whose links never consume the previous result: use a group"
    options = {"mixed-tasks": False}

    VALID = [
        _APP + 'chain(export.s("orders"), export.s()).delay()\n',
        _APP + 'chain(export.si("orders")).delay()\n',
        _APP + 'chain(export.si("a"), group(export.si("b"), export.si("c")), total.s()).delay()\n',
        _APP + 'group(export.si("a"), export.si("b")).delay()\n',
        _APP + 'chord([export.si("a"), export.si("b")], ping.si()).delay()\n',
        _APP + 'chain(export.si("a"), export.si("b"), total.s()).delay()\n',
        _APP + 'chain(export.s("a"), ping.si()).delay()\n',
    ]
    INVALID = [
        _APP + 'chain(export.si("a"), export.si("b"), export.si("c")).delay()  # expect: CCL003\n',
        _APP + 'workflow = export.s("a") | export.si("b")  # expect: CCL003\n',
        _APP + 'export.s("a").link(export.si("b") | export.si("c"))  # expect: CCL003\n',
        _APP + 'group(chain(export.si("a"), export.si("b")), export.si("c")).delay()  # expect: CCL003\n',
    ]

    def check(self, project):
        for workflow in project.workflows:
            for node in [workflow.canvas] + [c.callback for c in workflow.callbacks]:
                for chain in chains(node):
                    if chain.span is not None and \
                            independent(chain, self.option("mixed-tasks")):
                        yield self._finding(workflow, chain)

    def _finding(self, workflow: Workflow, chain: ChainNode):
        names = [task_display(step) for step in chain.steps]
        listed = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        message = (f"no link of this chain uses the previous result ({listed}): the "
                   f"{len(names)} tasks run one after another for nothing, and one failure "
                   f"drops the rest; run them in parallel with group(...) (or chord(...) "
                   f"if something must run after all of them)")
        replay = replace(workflow_replay(workflow), chain=ChainSpot(
            chain.span.line, chain.span.column,
            tuple(getattr(step.task, "name", None) for step in chain.steps)))
        return self.finding(where(workflow, chain), chain.span, message, replay=replay)
