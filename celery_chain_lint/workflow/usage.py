"""Where each task is used inside workflows, and what its result does there.

Rules about a task's body (CCL004 large-result, CCL005 missing-retry) only matter when the task
runs inside a workflow that depends on it: a chain link followed by another step, a chord
header member, a member of a group that precedes a step (Celery turns that into a chord). This
module walks every workflow once and records, for each signature, what comes after it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from celery_chain_lint.workflow.model import (
    CalledNode,
    ChainNode,
    ChordNode,
    GroupNode,
    Node,
    SignatureNode,
    UnknownNode,
    Workflow,
)


@dataclass(frozen=True, eq=False)
class TaskUse:
    """One signature of a task inside a workflow."""

    workflow: Workflow
    signature: SignatureNode
    # The step that runs after this one (None: nothing waits for it).
    then: Optional[Node]
    # "link" (a chain step or a link callback's parent), "header" (a chord header member, or a
    # group member before a step), or "last" (nothing after it).
    role: str

    @property
    def followed(self) -> bool:
        """Later work depends on this task succeeding (a failure stops it)."""
        return self.then is not None

    @property
    def passes_result(self) -> bool:
        """This task's return value is sent on to the next step, or collected for a chord body
        (header results go through the result backend even when the body is immutable)."""
        if self.role == "header":
            return True
        return self.then is not None and receives_result(self.then)


def receives_result(node: Optional[Node]) -> bool:
    """Whether ``node``, as the step after another, takes that step's result."""
    if isinstance(node, SignatureNode):
        return not node.immutable
    if isinstance(node, ChainNode):
        return bool(node.steps) and receives_result(node.steps[0])
    if isinstance(node, GroupNode):
        return any(receives_result(member) for member in node.parts)
    if isinstance(node, ChordNode):
        return receives_result(node.header)
    return False  # called, unknown: nothing is claimed


def task_uses(workflow: Workflow) -> Iterator[TaskUse]:
    """Every signature of ``workflow`` (its canvas and its callbacks) with what follows it."""
    links = [c.callback for c in workflow.callbacks if c.kind == "link"]
    yield from _walk(workflow, workflow.canvas, links[0] if links else None, "last")
    for callback in workflow.callbacks:
        yield from _walk(workflow, callback.callback, None, "last")


def _walk(workflow: Workflow, node: Node, then: Optional[Node], role: str) -> Iterator[TaskUse]:
    # (node, what follows it, role when nothing inside changes it); nesting is bounded by the
    # builder, chain steps are iterated.
    stack: List[Tuple[Node, Optional[Node], str]] = [(node, then, role)]
    while stack:
        current, after, current_role = stack.pop()
        if isinstance(current, SignatureNode):
            yield TaskUse(workflow, current, after,
                          current_role if after is not None or current_role == "header"
                          else "last")
        elif isinstance(current, ChainNode):
            steps = current.steps
            for index in reversed(range(len(steps))):
                following = steps[index + 1] if index + 1 < len(steps) else after
                stack.append((steps[index], following,
                              "link" if following is not None else current_role))
        elif isinstance(current, GroupNode):
            member_role = "header" if after is not None and not current.unrolled else current_role
            if current.unrolled and after is not None:
                member_role = "link"
            for member in reversed(current.parts):
                stack.append((member, after, member_role))
        elif isinstance(current, ChordNode):
            if current.body is not None:
                stack.append((current.body, after, current_role))
            body = current.body if current.body is not None else UnknownNode(current.span)
            for member in reversed(current.header.parts):
                stack.append((member, body, "header"))
        elif isinstance(current, (CalledNode, UnknownNode)):
            continue


def uses_by_task(workflows: List[Workflow]) -> Dict[int, List[TaskUse]]:
    """id(task) -> its uses, in workflow order."""
    found: Dict[int, List[TaskUse]] = {}
    for workflow in workflows:
        for use in task_uses(workflow):
            if use.signature.task is not None:
                found.setdefault(id(use.signature.task), []).append(use)
    return found
