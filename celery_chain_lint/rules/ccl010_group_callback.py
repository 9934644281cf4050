"""CCL010 group-callback: a callback linked to a group does not run once with the results.

## What it does
Flags a success callback attached to a group instead of being the body of a chord:
``g.link(cb)``, ``g.apply_async(link=cb)`` (and ``link_error=``), ``group(..., link=cb)``,
``g.set(link=cb)``, and ``link`` on a chain whose last step is a group.

## Why is this bad?
A group has no single completion to hang a callback on. What Celery 5.7.0 does instead,
observed on a real worker with ``group(work.s(1), work.s(2), work.s(3))``:

- ``g.link(cb)`` (``group.link``) links an immutable copy of ``cb`` to the group's *first*
  member only: ``cb`` ran once, with no arguments at all, as soon as ``work(1)`` finished,
  whether or not the other members succeeded; when ``work(1)`` failed it never ran.
- ``g.apply_async(link=cb)`` raises ``TypeError: Cannot add link to group: use a chord``
  (``link_error=``: ``TypeError: Cannot add link to group: do that on individual tasks``).
- ``group(..., link=cb)``, ``g.set(link=cb)``, and ``chain(a.s(), group(...)).apply_async(link=cb)``
  or ``.link(cb)`` give the link to every member: ``cb`` ran once per member, with that
  member's result (``report(10)``, ``report(20)``), never with the list.

## Example
```python
g = group(charge.s(order) for order in orders)
g.link(settle.s())          # settle() runs once, without the charges, after the first one
g.apply_async()
```

## How to fix
Use a chord: the body runs once, after every member succeeded, with the list of results:
```python
(group(charge.s(order) for order in orders) | settle.s()).apply_async()
```
"""
from __future__ import annotations

from typing import Iterator, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.symbols import celery_name
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    GroupNode,
    Node,
    SignatureNode,
    Workflow,
    nodes,
)
from celery_chain_lint.workflow.replay import workflow_replay

_APP = """\
from celery import Celery, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def charge(order_id):
    return order_id * 10

@app.task
def settle(amounts):
    return sum(amounts)

@app.task
def report(*results):
    return len(results)
"""


def _describe(expr: Optional[ir.Expr]) -> str:
    return expr.text if expr is not None and expr.text else "the callback"


def _describe_node(node: Node) -> str:
    if isinstance(node, SignatureNode) and node.task is not None:
        method = {"s": ".s", "si": ".si", "signature": ".signature"}.get(node.via, "")
        return f"{node.task.display}{method}(...)" if method else node.task.display
    return "the callback"


class GroupCallback(Rule):
    code = "CCL010"
    name = "group-callback"
    summary = ("a callback linked to a group runs after the first member only, or once per "
               "member, or raises TypeError; a chord was meant")

    VALID = [
        _APP + "(group(charge.s(1), charge.s(2)) | settle.s()).apply_async()\n",
        _APP + "chord([charge.s(1), charge.s(2)])(settle.s())\n",
        _APP + "sig = charge.s(1)\nsig.link(settle.s())\n",
        _APP + "g = group(charge.s(1), charge.s(2))\ng.link_error(settle.si([]))\n",
    ]
    INVALID = [
        _APP + "g = group(charge.s(1), charge.s(2))\ng.link(report.s())  # expect: CCL010\n",
        _APP + "group(charge.s(1), charge.s(2)).apply_async(link=report.s())  # expect: CCL010\n",
        _APP + "group(charge.s(1), charge.s(2), link=report.s()).delay()  # expect: CCL010\n",
    ]

    def check(self, project) -> Iterator:
        seen = set()
        for workflow in project.workflows:
            for span, message, links in self._problems(project, workflow):
                key = (workflow.module.path, span)
                if span is None or key in seen:
                    continue
                seen.add(key)
                yield self.finding(workflow.module.path, span, message,
                                   replay=workflow_replay(workflow, group_links=links))

    def _problems(self, project, workflow: Workflow):
        applied_with_options = workflow.application is not None \
            and workflow.application.how == "apply_async"
        for callback in workflow.callbacks:
            if callback.kind == "link" and isinstance(callback.parent, GroupNode):
                if applied_with_options:
                    yield callback.span, (
                        f"group.apply_async(link={_describe_node(callback.callback)}) raises "
                        "TypeError: Cannot add link to group: use a chord; make the callback "
                        "the chord's body: (group(...) | callback)"), None
                else:
                    yield callback.span, (
                        f"group.link() links an immutable copy of "
                        f"{_describe_node(callback.callback)} to the group's first member "
                        "only: it runs once, with no results, as soon as that member "
                        "succeeds (even if the others fail) and never if it fails; use a "
                        "chord: (group(...) | callback)"), None
            elif callback.kind == "error" and isinstance(callback.parent, GroupNode) \
                    and applied_with_options:
                yield callback.span, (
                    f"group.apply_async(link_error={_describe_node(callback.callback)}) raises "
                    "TypeError: Cannot add link to group: do that on individual tasks; "
                    "use g.link_error(errback), which links it to every member"), None
            elif callback.kind == "link" and _ends_in_group(callback.parent):
                yield callback.span, (
                    f"the chain ends in a group, so {_describe_node(callback.callback)} is "
                    "linked to every member of that group: it runs once per member with that "
                    "member's result, not once with the list; append it to the chain instead "
                    "(the group becomes a chord header and the callback gets the list)"), None
        if workflow.expr is not None:
            yield from self._group_options(project, workflow)

    def _group_options(self, project, workflow: Workflow):
        """``group(..., link=cb)`` and ``g.set(link=cb)``: every member gets the link."""
        module = workflow.module.module
        for node in ir.walk(workflow.expr):
            if not isinstance(node, ir.Call):
                continue
            link = node.keyword("link")
            if link is None:
                continue
            func = node.func
            if isinstance(func, ir.Attribute) and func.attr == "set":
                target, how = project.builder.build(func.value, module), "set"
            elif celery_name(project.resolver.resolve(func, module)) == "group":
                target, how = GroupNode(None, node.span), "keyword"
            else:
                continue
            if isinstance(target, GroupNode) and not target.unrolled:
                yield link.span, (
                    f"link={_describe(link)} on a group is given to every member: it runs "
                    "once per member with that member's result, not once with the list; use "
                    "a chord: (group(...) | callback)"), _group_links(
                        project, workflow, target, link, how)


def _group_links(project, workflow: Workflow, target: GroupNode, link: ir.Expr, how: str):
    """The replay data's group links: the callback, on the workflow's node for that group."""
    callback = project.builder.build(link, workflow.module.module)
    if callback is None or target.span is None:
        return None
    for node in nodes(workflow.canvas):
        if isinstance(node, GroupNode) and node.span == target.span:
            return {id(node): [(how, callback)]}
    return None


def _ends_in_group(node: Node) -> bool:
    if not isinstance(node, ChainNode) or not node.steps:
        return False
    last = node.steps[-1]
    return isinstance(last, GroupNode) and not last.unrolled
