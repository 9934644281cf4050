"""CCL016 task-returns-canvas: a shadow task returns the canvas the flagged task builds; confirmed
when the worker stores it as a plain value (a dict) and none of the canvas's tasks ran."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from celery_chain_lint.harness.confirmers import (
    Claim,
    alone,
    confirmed,
    confirms,
    not_reproduced,
    required,
)
from celery_chain_lint.workflow.replay import ReplayApplication, ReplayTask

RETURNS_CANVAS = "ccl_verify.returns_canvas"
# The harness's own tasks, in every session (the stand-in member of dynamic groups, CCL008...).
HELPERS = {
    RETURNS_CANVAS: ReplayTask(RETURNS_CANVAS, "returns_canvas", params=()),
    "ccl_verify.member": ReplayTask("ccl_verify.member", "member"),
}


@confirms("CCL016")
def confirm_task_returns_canvas(claim: Claim, context) -> Any:
    from celery_chain_lint.harness.replayer import build

    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    # The canvas the task returns, built (not applied) as the task body builds it...
    built = build(context.session.app, replace(workflow, application=ReplayApplication("none")),
                  repair=True, fill_dynamic=True)
    returned = dict(built.canvas)
    names = {n.task for n in built.nodes}
    # ...and returned by a task on the worker, as the flagged ``return`` does.
    run = context.run(alone(RETURNS_CANVAS, flagged=True), {RETURNS_CANVAS: {"return": returned}},
                      quiet=0.3)
    evidence = context.evidence(run, predicted=claim.message, notes=[
        f"the returned canvas is {built.text}; it is returned by the harness's own task "
        f"{RETURNS_CANVAS}, as the flagged return statement returns it"])
    ran = [e for e in run.journal if e.get("task") in names]
    node = run.built.nodes[0] if run.built and run.built.nodes else None
    state = run.observation.states.get(node.id, {}) if node else {}
    evidence["measured"] = {"returning task": state.get("state"),
                            "canvas tasks run": len(ran)}
    if state.get("state") == "SUCCESS" and not ran:
        result = str(state.get("result"))
        return confirmed(f"the task ended SUCCESS with the canvas as its result "
                         f"({result[:80]}{'...' if len(result) > 80 else ''}) and none of the "
                         "canvas's tasks ran", **evidence)
    return not_reproduced(f"the returning task ended {state.get('state')} and {len(ran)} "
                          "task(s) of the canvas ran", **evidence)
