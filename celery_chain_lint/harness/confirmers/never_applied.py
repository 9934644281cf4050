"""CCL014 canvas-never-applied: the canvas is built and not applied, as in the source:
confirmed when none of its tasks ran within the window and nothing reached the queue; a contrast run applies the same
canvas and shows its tasks running."""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import confirmed, confirms, not_reproduced, skipped, walk

# How long nothing must run for a canvas never applied to count as never run (seconds).
NEVER_APPLIED_WINDOW = 0.4


@confirms("CCL014")
def confirm_canvas_never_applied(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay:
        return skipped("the finding carries no replay data")
    names = {n.get("task") for n in walk(replay.get("canvas")) if n.get("type") == "signature"}
    names.discard(None)
    if not names:
        return skipped("the replay data holds no task of the canvas")
    built_only = dict(replay, application={"how": "none", "args": [], "kwargs": {}})
    run = context.run(built_only, repair=True, timeout=NEVER_APPLIED_WINDOW, until="timeout")
    evidence = context.evidence(run, predicted=finding.get("message"))
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    ran = [e for e in run.journal if e.get("task") in names]
    applied = context.run(dict(replay, application=None), repair=True)
    ran_applied = [e for e in applied.journal if e.get("task") in names]
    evidence["measured"] = {
        f"tasks run in {NEVER_APPLIED_WINDOW:g}s after building it": len(ran),
        "tasks run once applied": f"{len(ran_applied)} within {applied.elapsed:.2f}s",
    }
    if ran:
        return not_reproduced(f"{len(ran)} task(s) of the canvas ran although it was never "
                              "applied", **evidence)
    return confirmed(f"building the canvas sent nothing: no task ran within "
                     f"{NEVER_APPLIED_WINDOW:g}s; applied, the same canvas ran "
                     f"{len(ran_applied)} task(s) in {applied.elapsed:.2f}s", **evidence)
