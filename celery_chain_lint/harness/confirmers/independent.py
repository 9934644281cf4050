"""CCL003 independent-chain: the chain runs its links one after another for nothing.

Every task of the flagged chain gets a shadow that sleeps a fixed time. The chain is run as
written, then the same signatures as a group. Confirmed when the chain's wall time is about the
sum of the links and the group's about the longest one (the worker runs 8 tasks at once); the
evidence reports both and their ratio.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Optional

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    not_reproduced,
    required,
    skipped,
    worker_alive,
)
from celery_chain_lint.workflow.replay import (
    ReplayChain,
    ReplayGroup,
    ReplaySignature,
    ReplayWorkflow,
)

STEP_SECONDS = 0.2


def _independent(chain: ReplayChain) -> bool:
    """A chain of two or more plain signatures (the rule decided that no link needs a result)."""
    return len(chain.steps) >= 2 and all(isinstance(s, ReplaySignature) for s in chain.steps)


def flagged_chain(workflow: ReplayWorkflow, line: Optional[int]) -> Optional[ReplayChain]:
    """The chain the finding is about: the one whose links are on its line, else the first."""
    chains = [found for found in workflow.nodes()
              if isinstance(found, ReplayChain) and _independent(found)]
    if line is not None:
        for chain in chains:
            lines = [s.line for s in chain.steps if s.line]
            if lines and min(lines) <= line <= max(lines) + 10:
                return chain
    return chains[0] if chains else None


def _wall(run) -> Optional[float]:
    """From the first shadow start to the last end (journal), else the observed elapsed time."""
    starts = [e["start"] for e in run.journal if e.get("start")]
    ends = [e["end"] for e in run.journal if e.get("end")]
    if starts and ends:
        return max(ends) - min(starts)
    return None


@confirms("CCL003")
def confirm_independent_chain(claim: Claim, context) -> Any:
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    chain = required(flagged_chain(workflow, claim.line),
                     "the replay data holds no chain of signatures to time")
    steps = tuple(replace(step, flagged=False) for step in chain.steps)
    names = {s.task for s in steps}
    behaviours = {name: {"sleep": STEP_SECONDS} for name in names if name}
    as_chain = ReplayWorkflow(ReplayChain(steps))
    as_group = ReplayWorkflow(ReplayGroup(steps))
    timeout = max(context.timeout, STEP_SECONDS * len(steps) * 3 + 2)
    # The finding is about ordering, not arguments (CCL001/CCL002 report those): every link
    # gets complete arguments and ignores the previous result, so the timing always runs.
    chain_run = context.run(as_chain, behaviours, timeout=timeout, repair=True)
    group_run = context.run(as_group, behaviours, timeout=timeout, repair=True)
    # Each run is judged in turn: the worker alive during it, then the run complete.
    evidence = context.evidence(chain_run, predicted=claim.message, runs={},
                                group_workflow=group_run.built.text if group_run.built else None)
    for run, label in ((chain_run, "chain"), (group_run, "group")):
        worker_alive(evidence, {label: run})
        if run.raised is not None or any(
                s.get("state") != "SUCCESS" for s in run.observation.states.values()):
            failure = run.exceptions()[0] if run.exceptions() else None
            what = f"{failure['type']}: {failure['message']}" if failure else "did not finish"
            return skipped(f"the {label} could not be timed: {what}", **evidence)
    n = len(steps)
    concurrency = getattr(context.options, "concurrency", 8) or 1
    chain_time = chain_run.elapsed
    group_time = group_run.elapsed
    expected_chain = n * STEP_SECONDS
    expected_group = math.ceil(n / concurrency) * STEP_SECONDS
    ratio = chain_time / group_time if group_time else float("inf")
    evidence["timings"].update({
        "task_seconds": STEP_SECONDS, "links": n,
        "chain_s": round(chain_time, 3), "group_s": round(group_time, 3),
        "chain_busy_s": round(_wall(chain_run) or 0.0, 3),
        "group_busy_s": round(_wall(group_run) or 0.0, 3),
        "ratio": round(ratio, 2),
    })
    evidence["measured"] = {"chain": f"{chain_time:.2f}s (sum of {n} x {STEP_SECONDS}s = "
                                     f"{expected_chain:.1f}s)",
                            "group": f"{group_time:.2f}s (longest: {expected_group:.1f}s)",
                            "ratio": f"{ratio:.1f}x"}
    sequential = chain_time >= expected_chain * 0.9
    parallel = group_time < expected_chain * 0.75 and ratio >= min(1.5, n * 0.6)
    if sequential and parallel:
        return confirmed(f"the chain took {chain_time:.2f}s, about the sum of its {n} links; "
                         f"the same tasks as a group took {group_time:.2f}s ({ratio:.1f}x "
                         "faster)", **evidence)
    return not_reproduced(f"chain {chain_time:.2f}s vs group {group_time:.2f}s: no serial "
                          "penalty measured", **evidence)
