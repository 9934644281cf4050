"""CCL021 revoke-last-only: the canvas is applied, and its result revoked at once, as written.

The harness's worker runs with remote control off (it must not touch the user's broadcast
exchanges), so the revoke cannot reach it: ``AsyncResult.revoke()`` is called as written and
the ids it hands to ``app.control.revoke`` (Celery's own code decides them) are recorded
instead of broadcast. Confirmed when they are a single id of the workflow while its other tasks
ran to SUCCESS. (With remote control on, Celery 5.7.0 on Redis: that one task ended REVOKED,
the others SUCCESS.)
"""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    not_reproduced,
    required,
)


@confirms("CCL021")
def confirm_revoke_last_only(claim: Claim, context) -> Any:
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    revoked: Dict[str, Any] = {"ids": []}

    def prepare(built):
        apply = built.apply

        def apply_then_revoke():
            result = apply()
            control = result.app.control
            control.revoke = lambda task_id, **options: revoked["ids"].extend(
                task_id if isinstance(task_id, (list, tuple)) else [task_id])
            try:
                result.revoke()
            finally:
                del control.revoke  # the instance attribute shadowed the method
            return result

        built.apply = apply_then_revoke

    run = context.run(workflow, prepare=prepare)
    evidence = context.evidence(run, predicted=claim.message)
    if run.raised is not None:
        return not_reproduced(f"applying or revoking raised {type(run.raised).__name__}: "
                              f"{run.raised}", **evidence)
    states = run.observation.states if run.observation else {}
    nodes = run.built.nodes if run.built else []
    ids = revoked["ids"]
    ran = [n for n in nodes if n.id not in ids
           and states.get(n.id, {}).get("state") == "SUCCESS"]
    roles = {n.id: f"{n.role} ({n.task.rsplit('.', 1)[-1]})" for n in nodes}
    evidence["measured"] = {"ids revoke() sent": [roles.get(i, i) for i in ids],
                            "states": {roles[n.id]: states.get(n.id, {}).get("state", "PENDING")
                                       for n in nodes}}
    if len(ids) != 1 or ids[0] not in roles:
        return not_reproduced(f"revoke() sent {len(ids)} id(s): {ids}", **evidence)
    if not ran:
        return not_reproduced("no other task of the workflow ran to SUCCESS", **evidence)
    names = ", ".join(sorted({n.task.rsplit(".", 1)[-1] for n in ran}))
    return confirmed(f"revoke() on the result sent one id, {roles[ids[0]]}'s, of the "
                     f"workflow's {len(nodes)} tasks; the {len(ran)} other(s) ran to SUCCESS "
                     f"({names})", **evidence)
