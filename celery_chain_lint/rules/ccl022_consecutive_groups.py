"""CCL022 consecutive-groups: after two groups in a row, the next step runs once per member.

## What it does
Flags a chain that starts with two groups and goes on after them:
``chain(group(a, b), group(c, d), group(e, f))``, ``group(...) | group(...) | group(...)``,
``chain(group(...), group(...)) | group(...)``, ``chord(header, group(c, d)) | group(e, f)``
and the same followed by a chain (``| (x.s() | y.s())``) or by a fourth group. Both groups must
have two or more members known statically; a step between the groups, a task first in the
chain, or a task right after the third group (``chain(g1, g2, g3, t)``: Celery folds it back
into a chord) is not reported, nor ``g1 | g2 | g3`` built but not applied where it is (a task
appended later would repair it).

## Why is this bad?
``chain(g1, g2, ...)`` that starts with a group is folded with ``|`` from that group
(``_fold_chain``): ``g1 | g2`` is ``chord(g1, body=g2)``, and ``chord | g3`` with a group or a
chain on the right is ``_chain(chord, g3)``. A chord whose body is a group hands the rest of the
chain to every member of that body: the next step runs once per member of the second group,
each time with that one member's result, never once with the list of all of them.
Observed on Celery 5.7.0 (Redis broker and backend, threads worker):
``chain(group(add.s(1, 1), add.s(2, 2)), group(tag.s("a"), tag.s("b")),
group(tag.s("x"), tag.s("y")))`` ran ``tag("x")`` and ``tag("y")`` twice each, under the same
task ids, first with ``["b", [2, 4]]`` then with ``["a", [2, 4]]``; ``.get()`` returned
``[["x", ["b", [2, 4]]], ["y", ["a", [2, 4]]]]``, whichever runs ended last. The same with
``g1 | g2 | g3``, ``chord([...], g2) | g3``, four groups, and ``| (m.s() | n.s())`` after
the two groups (``m`` and ``n`` ran twice), or ``g1, g2, g3, g4, t`` (g3 ran twice).
``chain(g1, g2, g3, t)`` ran every step once (``_chain.__or__`` makes ``chord(g3, t)`` and folds
it into the chord's body: the case of Celery's own test for issue 8662), as did
``chain(add.s(1, 1), g1, g2, g3)``,
``chain(g1, g2, total.s(), g3)`` and ``chain(chord([...], g2), g3)`` ran each step once, with
the list. (A chain whose only element is a group, also named in the issue, ran as that group
on this Celery: nothing is reported about it.)

## Example
```python
workflow = group(fetch.s(a), fetch.s(b)) | group(parse.s(), index.s()) | group(notify.s(), audit.s())
```
``notify`` and ``audit`` run twice, each time with one of ``parse``'s or ``index``'s results.

## How to fix
Put a task that takes the list between the second group and what follows, so that the second
group becomes the header of a chord whose body runs once:
```python
group(fetch.s(a), fetch.s(b)) | group(parse.s(), index.s()) | merge.s() | group(notify.s(), audit.s())
```
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator, List, Optional

from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    ChordNode,
    GroupNode,
    Node,
    SignatureNode,
    Workflow,
    nodes,
    signatures,
    task_display,
)
from celery_chain_lint.workflow.replay import (
    PerMember,
    Replay,
    ReplayChain,
    ReplayChord,
    ReplayGroup,
    rewrite,
    workflow_replay,
)

_APP = """\
from celery import Celery, chain, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def add(x, y):
    return x + y

@app.task
def tag(value, label):
    return [label, value]

@app.task
def merge(values):
    return values
"""
_G1 = "group(add.s(1, 1), add.s(2, 2))"
_G2 = 'group(tag.s("a"), tag.s("b"))'
_G3 = 'group(tag.s("x"), tag.s("y"))'


class ConsecutiveGroups(Rule):
    code = "CCL022"
    name = "consecutive-groups"
    summary = ("a chain that starts with two groups and goes on: Celery runs the next step once "
               "per member of the second group, each time with one member's result")

    VALID = [
        _APP + f"chain({_G1}, {_G2}).delay()\n",
        _APP + f"chain(add.s(1, 1), {_G2}, {_G3}).delay()\n",
        _APP + f"chain({_G1}, {_G2}, merge.s(), {_G3}).delay()\n",
        _APP + f"chain(chord([add.s(1, 1), add.s(2, 2)], {_G2}), {_G3}).delay()\n",
        _APP + f"chain({_G1} | {_G2}, {_G3}).delay()\n",
        _APP + f"chain({_G1}, group(tag.s(x) for x in 'ab'), {_G3}).delay()\n",
        _APP + f"chain({_G1}).delay()\n",
        _APP + f"chain({_G1}, {_G2}, {_G3}, merge.s()).delay()\n",
        _APP + f"({_G1} | {_G2} | {_G3} | group(merge.s())).delay()\n",
        _APP + f"workflow = chain({_G1}, {_G2}, {_G3})\n",
    ]
    INVALID = [
        _APP + f"chain({_G1}, {_G2}, {_G3}).delay()  # expect: CCL022\n",
        _APP + f"({_G1} | {_G2} | {_G3}).delay()  # expect: CCL022\n",
        _APP + f"(chord([add.s(1, 1), add.s(2, 2)], {_G2}) | {_G3}).delay()  # expect: CCL022\n",
        _APP + f"(chain({_G1}, {_G2}) | {_G3}).delay()  # expect: CCL022\n",
        _APP + f'chain({_G1}, {_G2}, chain(tag.s("m"), tag.s("n"))).delay()  # expect: CCL022\n',
        _APP + f'chain({_G1}, {_G2}, {_G3}, group(tag.s("p"), tag.s("q")), merge.s()).delay()'
               '  # expect: CCL022\n',
        _APP + f'workflow = chain({_G1}, {_G2}, chain(tag.s("m"), tag.s("n")))  # expect: CCL022\n',
    ]

    def check(self, project) -> Iterator:
        for workflow in project.workflows:
            for root in [workflow.canvas] + [c.callback for c in workflow.callbacks]:
                for chain in (n for n in nodes(root) if isinstance(n, ChainNode)):
                    if chain.per_member is None or chain.span is None:
                        continue
                    if chain.celery_kind == "broken-group" and workflow.application is None:
                        continue  # a task appended before it is applied would repair it
                    body = _body_group(chain.steps[chain.per_member - 1])
                    after = chain.steps[chain.per_member]
                    if body is None:
                        continue
                    yield self.finding(workflow.module.path, chain.span,
                                       self._message(body, after),
                                       replay=_replay(workflow, chain, body, after))

    @staticmethod
    def _message(body: GroupNode, after: Node) -> str:
        group = f"group({_names(list(signatures(body)))})"
        count = len(body.members or ())
        what = _describe(after)
        return (f"Celery composes this as _chain(chord(..., body={group}), {what}): a "
                f"chord whose body is a group runs the rest of the chain once per member of "
                f"that group, so {what} runs {count} times, each time with one member's result, "
                f"never once with the list of results; put a task that takes the list between "
                f"{group} and {what}")


def _body_group(step: Node) -> Optional[GroupNode]:
    if isinstance(step, ChordNode):
        step = step.body
    if isinstance(step, GroupNode) and step.members is not None and len(step.members) >= 2:
        return step
    return None


def _describe(node: Node) -> str:
    if isinstance(node, GroupNode):
        return f"group({_names(list(signatures(node)))})"
    if isinstance(node, SignatureNode):
        return task_display(node)
    found = list(signatures(node))
    return f"the chain {_names(found[:1])} | ..." if found else "the next step"


def _names(found: List[SignatureNode]) -> str:
    names = [task_display(s) for s in found]
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def _replay(workflow: Workflow, chain: ChainNode, body: GroupNode, after: Node) -> Replay:
    """The workflow, with the flagged chain marked to be rebuilt with ``|`` as Celery composed
    it (``chain(*steps)`` of the flattened steps would fold it right)."""
    first = next(iter(signatures(after)), None)
    replay = workflow_replay(workflow, flagged=first)  # the confirmer follows it
    flow = replay.workflow
    roots = [workflow.canvas] + [c.callback for c in workflow.callbacks]
    for index, (node, replayed) in enumerate(zip(roots, flow.roots())):
        found = _replayed_as(node, replayed, chain)
        if found is None:
            continue
        # A chain after the groups is flattened into the steps: pipe the first ones only.
        split = chain.per_member if isinstance(after, SignatureNode) else None
        piped = rewrite(replayed, lambda n: replace(n, compose="pipe", pipe_split=split)
                        if n is found else n)
        if index == 0:
            flow = replace(flow, canvas=piped)
        else:
            callbacks = list(flow.callbacks)
            callbacks[index - 1] = replace(callbacks[index - 1], callback=piped)
            flow = replace(flow, callbacks=tuple(callbacks))
        break
    return replace(replay, workflow=flow, per_member=PerMember(
        chain.span.line, chain.span.column, len(body.members or ()),
        tuple(getattr(s.task, "name", None) for s in signatures(body)),
        tuple(getattr(s.task, "name", None) for s in signatures(after))[:1]))


def _replayed_as(node: Node, replayed, target: ChainNode):
    """The replay node ``replay_node`` made for ``target`` inside ``node`` (same shapes)."""
    stack = [(node, replayed)]
    while stack:
        current, current_replayed = stack.pop()
        if current is target:
            return current_replayed
        if isinstance(current, ChainNode) and isinstance(current_replayed, ReplayChain):
            stack.extend(zip(current.steps, current_replayed.steps))
        elif isinstance(current, GroupNode) and isinstance(current_replayed, ReplayGroup):
            stack.extend(zip(current.members or (), current_replayed.members or ()))
        elif isinstance(current, ChordNode) and isinstance(current_replayed, ReplayChord):
            stack.append((current.header, current_replayed.header))
            stack.append((current.body, current_replayed.body))
    return None
