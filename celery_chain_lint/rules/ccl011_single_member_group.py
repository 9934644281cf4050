"""CCL011 single-member-group: a group of one inside a chain hands the next link a scalar.

## What it does
Flags a group with exactly one member written inside a chain (``chain(a.s(), group([b.s()]),
c.s())``, ``a.s() | group(b.s()) | c.s()``) when the next link treats the value it receives as
a list: it iterates over it (``for x in results``, a comprehension) or passes it to ``sum``,
``len``, ``max``, ``sorted``, ``list``... A next link that takes one value is not reported.

## Why is this bad?
Celery unrolls a one-member group into that member when it builds a chain
(``Signature.__or__``, ``_chain.__or__`` and chain preparation), so the next link does not
become a chord body and receives the member's result itself, not a list of one. Observed on
Celery 5.7.0: ``chain(prep.s(), group([double.s()]), summarize.s())`` called
``summarize(14)`` and failed with ``TypeError: 'int' object is not iterable``; with a string
result the link silently iterates over its characters. A group built from a list that has two
members works, so the failure shows only for some inputs.

## Example
```python
@app.task
def best(scores):
    return max(scores)

chain(prepare.s(job), group([score.s()]), best.s()).delay()   # best(0.93): TypeError
```

## How to fix
Use the member directly and give the next link one value, or keep a real group (two or more
members, or ``group(...) | best.s()`` written outside a chain, which is not unrolled):
```python
chain(prepare.s(job), score.s(), best_of_one.s()).delay()
```
"""
from __future__ import annotations

from typing import Iterator, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    ChordNode,
    GroupNode,
    Node,
    SignatureNode,
    describe_result,
    where,
)
from celery_chain_lint.workflow.replay import workflow_replay

# Builtins whose first argument must be an iterable.
ITERABLE_CONSUMERS = frozenset({
    "sum", "len", "max", "min", "sorted", "list", "tuple", "set", "frozenset", "enumerate",
    "zip", "any", "all", "reversed", "iter", "dict",
})

_APP = """\
from celery import Celery, chain, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def prepare(job):
    return job

@app.task
def score(job):
    return 0.93

@app.task
def best(scores):
    return max(scores)

@app.task
def publish(value):
    return value
"""


class SingleMemberGroup(Rule):
    code = "CCL011"
    name = "single-member-group"
    summary = ("a one-member group inside a chain is unrolled: the next link gets a single "
               "value, not a list")

    VALID = [
        _APP + "chain(prepare.s(1), group([score.s(), score.s()]), best.s()).delay()\n",
        _APP + "chain(prepare.s(1), group([score.s()]), publish.s()).delay()\n",
        _APP + "(group([score.s(1)]) | best.s()).delay()\n",
    ]
    INVALID = [
        _APP + "chain(prepare.s(1), group([score.s()]), best.s()).delay()  # expect: CCL011\n",
        _APP + "flow = prepare.s(1) | group(score.s()) | best.s()  # expect: CCL011\n",
    ]

    def check(self, project) -> Iterator:
        seen = set()
        for workflow in project.workflows:
            nodes = [workflow.canvas] + [c.callback for c in workflow.callbacks]
            for chain in _chains(nodes):
                for step, following in zip(chain.steps, chain.steps[1:]):
                    if not (isinstance(step, GroupNode) and step.unrolled and step.members):
                        continue
                    parameter = _list_parameter(following)
                    key = (where(workflow, step), step.span)
                    if parameter is None or step.span is None or key in seen:
                        continue
                    seen.add(key)
                    member = describe_result(step.members[0]).text
                    task = following.task
                    message = (f"a group of one member inside a chain is unrolled into that "
                               f"member: {task.display}{task.params.render()} receives "
                               f"{member}, a single value, not a list of one, and uses "
                               f"{parameter!r} as a list (TypeError on a number, characters "
                               f"of a string); use the member directly, or a real group")
                    yield self.finding(where(workflow, step), step.span, message,
                                       replay=workflow_replay(workflow))


def _chains(nodes) -> Iterator[ChainNode]:
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, ChainNode):
            yield node
            stack.extend(node.steps)
        elif isinstance(node, GroupNode):
            stack.extend(node.parts)
        elif isinstance(node, ChordNode):
            stack.append(node.header)
            if node.body is not None:
                stack.append(node.body)


def _list_parameter(node: Node) -> Optional[str]:
    """The parameter of ``node``'s task that receives the previous result, if used as a list."""
    if not isinstance(node, SignatureNode) or node.immutable or node.task is None:
        return None
    task = node.task
    function = getattr(task, "function", None)
    if task.params is None or function is None:
        return None
    slots = [p for p in task.params.items if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    if not slots:
        return None
    name = slots[0].name
    if name in getattr(function, "iterated", ()):
        return name
    for site in function.calls:
        call = site.call
        if not isinstance(call, ir.Call) or not call.positional:
            continue
        first = call.positional[0]
        if not (isinstance(first, ir.Opaque) and first.kind == "local" and first.text == name):
            continue
        func = call.func
        if isinstance(func, ir.Name) and func.id in ITERABLE_CONSUMERS:
            return name
        if isinstance(func, ir.Attribute) and func.attr == "join" \
                and isinstance(func.value, ir.Const) and isinstance(func.value.value, str):
            return name
    return None
