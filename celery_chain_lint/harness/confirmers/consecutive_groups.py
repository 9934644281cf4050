"""CCL022 consecutive-groups: the workflow is replayed as the source composes it (with ``|``).

The flagged chain is rebuilt with ``|`` from its steps (``chain(*steps)`` of the analyser's
flattened steps would let Celery fold it right). Confirmed when the task after the two groups
(flagged in the replay data) ran as many times as the second group has members, under one task
id, and received one value each time (a member's result), not the list of the group's results (shadow journal).
"""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    journal_runs,
    not_reproduced,
    required,
    short,
)


@confirms("CCL022")
def confirm_consecutive_groups(claim: Claim, context) -> Any:
    why = "the finding carries no replay data naming the step after the groups"
    info = required(claim.replay.per_member, why)
    task = required(info.after, why)[0] or "?"
    members = int(required(info.members, why))
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    name = short(task)
    # The per-member runs come after the node first reads SUCCESS: wait for the journal.
    run = context.run(workflow, settle=0.3, quiet=0.6)
    evidence = context.evidence(run, predicted=claim.message)
    failures = run.exceptions()
    if failures:
        first = failures[0]
        return not_reproduced(f"the workflow failed: {first['type']}: {first['message']}",
                              **evidence)
    flagged = {n.id for n in (run.built.nodes if run.built else ()) if n.flagged}
    executions = [e for e in journal_runs(run, task) if e.get("id") in flagged]
    by_id: Dict[str, list] = {}
    for entry in executions:
        by_id.setdefault(entry.get("id"), []).append(entry)
    received = [next(iter((e.get("args") or {}).values()), None) for e in executions]
    evidence["measured"] = {f"{name} runs": len(executions),
                            f"{name} task ids": len(by_id),
                            f"{name} received": received,
                            "members of the second group": members}
    if not executions:
        return not_reproduced(f"{name} did not run within {context.timeout:g}s", **evidence)
    repeated = max(len(entries) for entries in by_id.values())
    lists = [value for value in received if str(value).startswith("[")]
    if repeated >= members and not lists:
        return confirmed(f"{name} ran {repeated} times under one task id, once per member of "
                         f"the group before it, receiving {received[0]} (one member's result) "
                         "each time, never the list", **evidence)
    return not_reproduced(f"{name} ran {repeated} time(s) per task id and received "
                          f"{received}", **evidence)
