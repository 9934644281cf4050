"""CCL009 errback-receives-task-id: the errback's parent is made to fail; confirmed when the
errback runs as a task and the parameter named for the exception holds the failed task's id."""
from __future__ import annotations

from typing import Any, Optional

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    flagged_signature,
    journal_runs,
    not_reproduced,
    required,
    short,
)
from celery_chain_lint.harness.confirmers.arguments import failure_behaviours
from celery_chain_lint.workflow.replay import ReplaySignature, ReplayWorkflow


def _flagged_callback(workflow: ReplayWorkflow) -> Optional[ReplaySignature]:
    return next((found for callback in workflow.callbacks
                 for found in [flagged_signature(callback.callback)] if found is not None),
                None)


@confirms("CCL009")
def confirm_errback_task_id(claim: Claim, context) -> Any:
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    errback = required(_flagged_callback(workflow),
                       "the replay data does not say which errback is flagged")
    name = errback.task
    behaviours = failure_behaviours(workflow)
    errback_ids = set()

    def prepare(built):
        errback_ids.update(n.id for n in built.nodes if n.role.startswith("errback"))

    def errback_done(states):  # sent as a task, the errback has a state of its own
        return any(states.get(i, {}).get("state") in ("SUCCESS", "FAILURE")
                   for i in errback_ids)

    run = context.run(workflow, behaviours, settle=0.3, stop_when=errback_done,
                      prepare=prepare)
    evidence = context.evidence(run, predicted=claim.message, injected={
        task: "raises InjectedFailure so that the errback runs" for task in behaviours})
    failed_ids = {node.id for node in (run.built.nodes if run.built else ())
                  if run.observation.state(node.id) == "FAILURE"}
    executions = journal_runs(run, name)
    received = [e.get("args") or {} for e in executions]
    evidence["measured"] = {"errback runs": len(executions),
                            "errback received": received[0] if received else None}
    for arguments in received:
        for parameter, shown in arguments.items():
            if any(shown == repr(task_id) for task_id in failed_ids):
                return confirmed(f"{short(name)} ran as a task and its parameter "
                                 f"{parameter!r} received the failed task's id {shown}, not "
                                 "the exception", **evidence)
            # ``*args`` (shown as the tuple it received) led by the id.
            if any(shown.startswith(f"({task_id!r},") for task_id in failed_ids):
                return confirmed(f"{short(name)} ran as a task and its *{parameter} "
                                 f"received {shown}: the failed task's id, not (request, exc, "
                                 "traceback)", **evidence)
    if not executions:
        return not_reproduced("the errback did not run as a task (Celery called it inline or "
                              "not at all)", **evidence)
    return not_reproduced(f"the errback ran with {received[0]}: no parameter held the failed "
                          "task's id", **evidence)
