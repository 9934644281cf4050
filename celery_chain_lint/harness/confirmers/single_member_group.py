"""CCL011 single-member-group: confirmed when the link after the one-member group receives the
member's result itself (a scalar), not a list; a contrast run with the member twice shows the
list a real group would pass."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator, Optional, Tuple

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
from celery_chain_lint.workflow.replay import (
    ReplayChain,
    ReplayGroup,
    ReplayNode,
    ReplayWorkflow,
    rewrite,
    walk,
)


def _unrolled_steps(node: Optional[ReplayNode]) -> Iterator[Tuple[ReplayChain, int]]:
    """(chain node, index of the one-member group) for every unrolled group in a chain."""
    for found in walk(node):
        if not isinstance(found, ReplayChain):
            continue
        for index, step in enumerate(found.steps):
            if (isinstance(step, ReplayGroup) and len(step.members or ()) == 1
                    and index + 1 < len(found.steps)):
                yield found, index


def _twice(workflow: ReplayWorkflow, chain: ReplayChain, index: int) -> ReplayWorkflow:
    """The same workflow with the one-member group's member twice: a real group."""
    group = chain.steps[index]
    real = replace(group, members=group.members * 2, unrolled=False)
    steps = chain.steps[:index] + (real,) + chain.steps[index + 1:]
    canvas = rewrite(workflow.canvas,
                     lambda node: replace(node, steps=steps) if node is chain else node)
    return replace(workflow, canvas=canvas)


@confirms("CCL011")
def confirm_single_member_group(claim: Claim, context) -> Any:
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    located = list(_unrolled_steps(workflow.canvas))
    chain, index = required(located, "the replay data holds no one-member group followed by "
                                     "a link")[0]
    name = required(first_task(chain.steps[index + 1]),
                    "the link after the group is not a known task")
    run = context.run(workflow)
    evidence = context.evidence(run, predicted=claim.message)
    executions = journal_runs(run, name)
    got = next(iter((executions[0].get("args") or {}).values()), None) if executions else None
    # Contrast: the same chain with the member twice, as a real group.
    other = context.run(_twice(workflow, chain, index))
    other_runs = journal_runs(other, name)
    got_twice = next(iter((other_runs[0].get("args") or {}).values()), None) \
        if other_runs else None
    task = short(name)
    evidence["measured"] = {f"{task} received (one member)": got,
                            f"{task} received (two members)": got_twice}
    if got is None:
        return not_reproduced(f"{task} did not run", **evidence)
    if not str(got).startswith("["):
        return confirmed(f"{task} received {got}, the member's own result, not a list; with "
                         f"two members it receives {got_twice}", **evidence)
    return not_reproduced(f"{task} received a list: {got}", **evidence)
