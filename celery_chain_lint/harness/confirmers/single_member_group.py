"""CCL011 single-member-group: confirmed when the link after the one-member group receives the
member's result itself (a scalar), not a list; a contrast run with the member twice shows the
list a real group would pass."""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    first_task,
    journal_runs,
    not_reproduced,
    skipped,
    walk,
)


def _unrolled_steps(node: Optional[Dict[str, Any]]):
    """(chain node, index of the one-member group) for every unrolled group in a chain."""
    for found in walk(node):
        if found.get("type") != "chain":
            continue
        steps = found.get("steps") or []
        for index, step in enumerate(steps):
            if (step.get("type") == "group" and len(step.get("members") or ()) == 1
                    and index + 1 < len(steps)):
                yield found, index


@confirms("CCL011")
def confirm_single_member_group(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay:
        return skipped("the finding carries no replay data")
    located = list(_unrolled_steps(replay.get("canvas")))
    if not located:
        return skipped("the replay data holds no one-member group followed by a link")
    chain, index = located[0]
    following = chain["steps"][index + 1]
    name = first_task(following)
    if name is None:
        return skipped("the link after the group is not a known task")
    run = context.run(replay)
    evidence = context.evidence(run, predicted=finding.get("message"))
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    executions = journal_runs(run, name)
    got = next(iter((executions[0].get("args") or {}).values()), None) if executions else None
    # Contrast: the same chain with the member twice, as a real group.
    contrast = copy.deepcopy(replay)
    twin_chain, twin_index = list(_unrolled_steps(contrast.get("canvas")))[0]
    members = twin_chain["steps"][twin_index]["members"]
    members.append(copy.deepcopy(members[0]))
    twin_chain["steps"][twin_index]["unrolled"] = False
    other = context.run(contrast)
    other_runs = journal_runs(other, name)
    got_twice = next(iter((other_runs[0].get("args") or {}).values()), None) \
        if other_runs else None
    short = name.rsplit(".", 1)[-1]
    evidence["measured"] = {f"{short} received (one member)": got,
                            f"{short} received (two members)": got_twice}
    if got is None:
        return not_reproduced(f"{short} did not run", **evidence)
    if not str(got).startswith("["):
        return confirmed(f"{short} received {got}, the member's own result, not a list; with "
                         f"two members it receives {got_twice}", **evidence)
    return not_reproduced(f"{short} received a list: {got}", **evidence)
