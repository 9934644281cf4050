"""CCL016 task-returns-canvas: a shadow task returns the canvas the flagged task builds; confirmed
when the worker stores it as a plain value (a dict) and none of the canvas's tasks ran."""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    not_reproduced,
    skipped,
)


RETURNS_CANVAS = "ccl_verify.returns_canvas"
HELPERS = {
    RETURNS_CANVAS: {"name": RETURNS_CANVAS, "display": "returns_canvas", "params": [],
                     "bind": False, "options": {}},
    "ccl_verify.member": {"name": "ccl_verify.member", "display": "member", "params": None,
                          "bind": False, "options": {}},
}


@confirms("CCL016")
def confirm_task_returns_canvas(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay:
        return skipped("the finding carries no replay data")
    from celery_chain_lint.harness.replayer import build

    # The canvas the task returns, built (not applied) as the task body builds it...
    built = build(context.session.app, dict(replay, application={"how": "none", "args": [],
                                                                    "kwargs": {}}),
                  repair=True, fill_dynamic=True)
    returned = dict(built.canvas)
    names = {n.task for n in built.nodes}
    # ...and returned by a task on the worker, as the flagged ``return`` does.
    helper = {"canvas": {"type": "signature", "task": RETURNS_CANVAS, "args": [], "kwargs": {},
                         "immutable": True, "via": "si", "flagged": True, "options": {}},
              "application": None, "callbacks": [], "tasks": HELPERS}
    run = context.run(helper, {RETURNS_CANVAS: {"return": returned}}, quiet=0.3)
    evidence = context.evidence(run, predicted=finding.get("message"))
    evidence["notes"] = evidence.get("notes", []) + [
        f"the returned canvas is {built.text}; it is returned by the harness's own task "
        f"{RETURNS_CANVAS}, as the flagged return statement returns it"]
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
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
