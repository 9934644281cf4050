"""CCL007 called-not-signature: a task is called where a workflow expects a signature.

## What it does
Flags ``task.delay(...)``, ``task.apply_async(...)`` and ``task(...)`` used as an element of
``chain``/``group``/``chord``, an operand of ``|`` next to a canvas, or a ``link=``/``link_error=``
callback, where a signature (``task.s(...)``) belongs.

## Why is this bad?
``delay``/``apply_async`` send the task *now*, outside the workflow, and return an
``AsyncResult``; calling the task runs it in the current process and returns its value. Either
way the workflow receives something that is not a signature. Observed on Celery 5.7.0, each
time after the task had already run once:

- ``chain(add.delay(1, 2), add.s(3))``: ``TypeError: unsupported operand type(s) for |:
  '_chain' and 'AsyncResult'`` (``'_chain' and 'int'`` for ``add(1, 2)``);
- ``add.delay(1, 2) | add.s(3)``: ``TypeError: unsupported operand type(s) for |: 'AsyncResult'
  and 'Signature'``;
- ``group(add.delay(1, 2), add.s(1, 1))``: ``TypeError: '>=' not supported between instances of
  'float' and 'str'``; ``group([add(1, 2), ...])``: ``AttributeError: 'int' object has no
  attribute 'app'``;
- ``chord([add.delay(1, 1), ...], total.s())``: ``AttributeError: 'AsyncResult' object has no
  attribute 'AsyncResult'``; a called chord body: ``... has no attribute 'clone'``;
- ``add.apply_async((1, 2), link=add.delay(1, 1))``: ``kombu.exceptions.EncodeError: Object of
  type AsyncResult is not JSON serializable``.

## Example
```python
chain(fetch.delay(url), parse.s(), store.s()).delay()
```

## How to fix
Build a signature with the same arguments; the workflow sends it when its turn comes:
```python
chain(fetch.s(url), parse.s(), store.s()).delay()
```
``--fix`` rewrites ``task.delay(a, b)`` and ``task.apply_async((a, b))`` to ``task.s(a, b)``
and ``task(a)`` to ``task.s(a)``. The fix is marked unsafe where the signature will receive the
previous step's result (a later chain step, a chord body, a callback): there ``.si(...)`` may be
what was meant.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.findings import Edit, Fix
from celery_chain_lint.rules.base import Invalid, Rule
from celery_chain_lint.workflow.model import (
    CalledNode,
    ChainNode,
    ChordNode,
    GroupNode,
    where,
)
from celery_chain_lint.workflow.replay import CalledSpot, workflow_replay

# What Celery 5.7 does with a called task in each position (observed).
OUTCOMES = {
    "a chain step": "building the chain raises TypeError: unsupported operand type(s) for |",
    "a group member": "building the group raises (TypeError or AttributeError)",
    "a chord header member": ("applying the chord raises AttributeError: 'AsyncResult' object "
                              "has no attribute 'AsyncResult'"),
    "the chord body": "applying the chord raises AttributeError (no attribute 'clone')",
    "a link callback": ("sending the task raises kombu EncodeError: Object of type AsyncResult "
                        "is not JSON serializable"),
    "an errback": ("sending the task raises kombu EncodeError: Object of type AsyncResult is "
                   "not JSON serializable"),
}

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


def called_nodes(workflow) -> Iterator[Tuple[CalledNode, str, bool]]:
    """(called node, its position, whether that position receives a previous result)."""
    stack = [] if isinstance(workflow.canvas, CalledNode) else [(workflow.canvas, "", False)]
    for callback in workflow.callbacks:
        context = "a link callback" if callback.kind == "link" else "an errback"
        stack.append((callback.callback, context, True))
    stack.reverse()
    while stack:
        node, context, receives = stack.pop()
        if isinstance(node, CalledNode):
            yield node, context or "a chain step", receives
        elif isinstance(node, ChainNode):
            for index in reversed(range(len(node.steps))):
                stack.append((node.steps[index], "a chain step", receives or index > 0))
        elif isinstance(node, GroupNode):
            for member in reversed(node.parts):
                stack.append((member, "a group member", receives))
        elif isinstance(node, ChordNode):
            if node.body is not None:
                stack.append((node.body, "the chord body", True))
            for member in reversed(node.header.parts):
                stack.append((member, "a chord header member", receives))


class CalledNotSignature(Rule):
    code = "CCL007"
    name = "called-not-signature"
    summary = "task.delay(), task.apply_async() or task() where a workflow expects a signature"
    fixable = True
    fix_safety = "sometimes unsafe"

    VALID = [
        _APP + "chain(add.s(1, 2), add.s(3)).delay()\n",
        _APP + "result = add.delay(1, 2)\n",
        _APP + "value = add(1, 2) | add(3, 4)\n",
        _APP + "group(add.s(i, i) for i in range(3)).delay()\n",
    ]
    INVALID = [
        Invalid(_APP + "chain(add.delay(1, 2), add.s(3)).delay()  # expect: CCL007\n",
                fixed=_APP + "chain(add.s(1, 2), add.s(3)).delay()  # expect: CCL007\n"),
        _APP + "workflow = add.s(1, 2) | add(3, 4)  # expect: CCL007\n",
        _APP + "chord([add.apply_async((1, 1)), add.s(2, 2)], total.s()).delay()  # expect: CCL007\n",
        _APP + "add.apply_async((1, 2), link=add.delay(5))  # expect: CCL007\n",
    ]

    def check(self, project):
        for workflow in project.workflows:
            for node, context, receives in called_nodes(workflow):
                if node.span is None or node.task is None:
                    continue
                yield self._finding(workflow, node, context, receives)

    def _finding(self, workflow, node: CalledNode, context: str, receives: bool):
        task = node.task
        call = node.call
        text = call.text if call is not None and call.text else f"{task.display}(...)"
        if node.how == "call":
            did = "runs the task now, in this process, and puts its return value"
        else:
            did = "sends the task now, outside the workflow, and puts an AsyncResult"
        fix = _fix(node, receives)
        message = (f"{text} {did} where {context} expects a signature: "
                   f"{OUTCOMES.get(context, 'the workflow cannot be built')}; "
                   f"use {task.display}.s(...)")
        replay = replace(workflow_replay(workflow), called=CalledSpot(
            task.name, node.how, context, node.span.line))
        return self.finding(where(workflow, node), node.span, message, fix, replay)


def _fix(node: CalledNode, receives: bool) -> Optional[Fix]:
    call = node.call
    if call is None or call.span is None:
        return None
    edits = _edits(node.how, call)
    if edits is None:
        return None
    applicability = "unsafe" if receives else "safe"
    return Fix(f"Use {node.task.display}.s(...)", edits, applicability)


def _edits(how: str, call: ir.Call) -> Optional[Tuple[Edit, ...]]:
    func = call.func
    if how == "call":
        if func.span is None:
            return None
        end = func.span
        return (Edit(ir.Span(end.end_line, end.end_column, end.end_line, end.end_column), ".s"),)
    if not isinstance(func, ir.Attribute) or func.attr_span is None:
        return None
    if how == "delay":
        return (Edit(func.attr_span, "s"),)
    # apply_async(): only ``apply_async()`` and ``apply_async((a, b))`` / ``apply_async([a, b])``.
    if not call.args:
        return (Edit(func.attr_span, "s"),)
    if len(call.args) != 1 or call.args[0].keyword or call.args[0].star:
        return None
    args = call.args[0].value
    if not isinstance(args, ir.Sequence) or args.kind not in ("tuple", "list") \
            or args.has_splat or args.span is None:
        return None
    start, span = func.attr_span, args.span
    if not args.items:
        return (Edit(ir.Span(start.line, start.column, call.span.end_line, call.span.end_column),
                     "s()"),)
    if args.kind == "list":  # the list's span includes its brackets
        inner = ir.Span(span.line, span.column + 1, span.end_line, span.end_column - 1)
    else:  # a parenthesized tuple's span does not include its parentheses
        inner = span
    return (
        Edit(ir.Span(start.line, start.column, inner.line, inner.column), "s("),
        Edit(ir.Span(inner.end_line, inner.end_column, call.span.end_line, call.span.end_column),
             ")"),
    )
