"""Workflows as plain JSON, for the runtime harness to rebuild them on shadow tasks."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.workflow.model import (
    CalledNode,
    ChainNode,
    ChordNode,
    GroupNode,
    Invocation,
    Node,
    SignatureNode,
    Value,
    Workflow,
    signatures,
)

_JSON_SCALARS = (str, int, float, bool, type(None))


def value_data(value: Value) -> Any:
    """A literal argument as itself; anything else as a placeholder naming its source text."""
    constant = literal(value.expr) if value.expr is not None else MISSING
    if constant is not MISSING and _is_json(constant):
        return {"literal": list(constant) if isinstance(constant, tuple) else constant}
    return {"placeholder": value.text}


def _is_json(constant: Any) -> bool:
    if isinstance(constant, (list, tuple)):
        return all(_is_json(item) for item in constant)
    return isinstance(constant, _JSON_SCALARS)


# Callbacks given to a group itself (``group(..., link=cb)``, ``g.set(link=cb)``), by the
# group node they were given to: (how, callback) with how "keyword" or "set" (CCL010).
GroupLinks = Dict[int, List[Tuple[str, Node]]]


def replay_name(task) -> Optional[str]:
    """The name a task is replayed under: its registered name, or when that is not a literal
    (``name=f"send_{channel}"`` in a factory) Celery's default one, for the shadow only."""
    if task is None:
        return None
    return task.name if task.name is not None else f"{task.module}.{task.display}"


def node_data(node: Optional[Node], flagged: Optional[SignatureNode] = None,
              group_links: Optional[GroupLinks] = None) -> Any:
    if isinstance(node, SignatureNode):
        return {"type": "signature", "task": replay_name(node.task),
                "args": [value_data(v) for v in node.args] if node.args_known else None,
                "kwargs": {k: value_data(v) for k, v in node.kwargs} if node.args_known else None,
                "immutable": node.immutable, "via": node.via, "flagged": node is flagged,
                "line": node.span.line if node.span else None,
                "options": {k: literal(v) for k, v in node.options
                            if _is_json(literal(v, object()))}}
    if isinstance(node, ChainNode):
        return {"type": "chain",
                "steps": [node_data(s, flagged, group_links) for s in node.steps]}
    if isinstance(node, GroupNode):
        members = None if node.members is None else [node_data(m, flagged, group_links)
                                                 for m in node.members]
        data = {"type": "group", "members": members, "unrolled": node.unrolled}
        if node.members is None and node.all_shapes and node.shapes:
            # Built by a comprehension: the harness replays two members of each shape.
            data["shapes"] = [node_data(m, flagged, group_links) for m in node.shapes]
        links = (group_links or {}).get(id(node))
        if links:
            data["links"] = [{"how": how, "callback": node_data(callback, flagged)}
                             for how, callback in links]
        return data
    if isinstance(node, ChordNode):
        return {"type": "chord", "header": node_data(node.header, flagged, group_links),
                "body": node_data(node.body, flagged, group_links)}
    if isinstance(node, CalledNode):
        return {"type": "called", "task": getattr(node.task, "name", None), "how": node.how}
    return {"type": "unknown"}


def workflow_data(workflow: Workflow, flagged: Optional[SignatureNode] = None,
                  group_links: Optional[GroupLinks] = None) -> Dict[str, Any]:
    application = workflow.application
    tasks = {}
    nodes = [workflow.canvas] + [c.callback for c in workflow.callbacks]
    nodes += [callback for links in (group_links or {}).values() for _, callback in links]
    for node in nodes:
        for signature in signatures(node):
            task = signature.task
            if task is not None:
                tasks[replay_name(task)] = dict(task.describe(), name=replay_name(task))
    return {
        "canvas": node_data(workflow.canvas, flagged, group_links),
        "application": None if application is None else {
            "how": application.how,
            "args": None if application.args is None
            else [value_data(v) for v in application.args],
            "kwargs": None if application.kwargs is None
            else {k: value_data(v) for k, v in application.kwargs},
        },
        "callbacks": [{"kind": c.kind, "callback": node_data(c.callback, flagged)}
                      for c in workflow.callbacks],
        "tasks": tasks,
    }


def replay_data(invocation: Invocation) -> Dict[str, Any]:
    data = workflow_data(invocation.workflow, invocation.signature)
    data["flagged_task"] = replay_name(invocation.signature.task)
    return data
