"""CCL010 group-callback: confirmed when Celery refuses the link (``apply_async(link=...)`` on a
group), or the callback does not run exactly once with the list of the members' results."""
from __future__ import annotations

from typing import Any, Optional

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    first_task,
    journal_runs,
    not_reproduced,
    required,
    short,
)
from celery_chain_lint.harness.confirmers.arguments import failure_behaviours
from celery_chain_lint.workflow.replay import ReplayGroup, ReplayWorkflow, walk


def _callback_task(workflow: ReplayWorkflow) -> Optional[str]:
    for callback in workflow.callbacks:
        if callback.kind in ("link", "error"):
            return first_task(callback.callback)
    return _group_link_task(workflow)


def _group_link_task(workflow: ReplayWorkflow) -> Optional[str]:
    """The callback given to a group itself: ``group(..., link=cb)``, ``g.set(link=cb)``."""
    for node in walk(workflow.canvas):
        for link in node.links if isinstance(node, ReplayGroup) else ():
            return first_task(link.callback)
    return None


@confirms("CCL010")
def confirm_group_callback(claim: Claim, context) -> Any:
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    name = required(_callback_task(workflow),
                    "the replay data names no callback task for the group")
    kind = next((c.kind for c in workflow.callbacks), "link")
    behaviours = failure_behaviours(workflow) if kind == "error" else {}
    run = context.run(workflow, behaviours, settle=0.3, quiet=0.4)
    evidence = context.evidence(run, predicted=claim.message)
    callback = short(name)
    if run.raised is not None:
        message = f"{type(run.raised).__name__}: {run.raised}"
        if isinstance(run.raised, TypeError) and "group" in str(run.raised):
            return confirmed(f"Celery refused the callback: {message}", **evidence)
        return not_reproduced(f"the workflow failed differently: {message}", **evidence)
    members = [n for n in (run.built.nodes if run.built else ())
               if ".group[" in n.role and n.task != name]
    executions = journal_runs(run, name)
    received = [e.get("args") for e in executions]
    evidence["measured"] = {"callback runs": len(executions), "group members": len(members),
                            "callback received": received}
    if kind == "error":
        if len(executions) != 1:
            return confirmed(f"the errback {callback} ran {len(executions)} times for one failed "
                             "group", **evidence)
        return not_reproduced(f"the errback {callback} ran once", **evidence)
    if len(executions) == 0:
        return confirmed(f"{callback} never ran although the group ran", **evidence)
    if len(executions) > 1:
        return confirmed(f"{callback} ran {len(executions)} times, once per member with that "
                         f"member's result ({received}), never once with the list", **evidence)
    only = received[0] or {}
    shows_list = any(str(v).startswith("[") for v in only.values())
    if not shows_list:
        first_end = min((e.get("end", 0) for e in run.journal if e.get("task") != name),
                        default=None)
        when = ""
        if first_end is not None and executions[0].get("start", 0) >= first_end:
            when = " as soon as the first member finished"
        return confirmed(f"{callback} ran once{when}, with {only or 'no arguments'}: not with "
                         "the list of the group's results", **evidence)
    return not_reproduced(f"{callback} ran once with {only}", **evidence)
