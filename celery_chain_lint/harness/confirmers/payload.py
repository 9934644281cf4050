"""CCL004 large-result: only the real task can say how big its result is.

Without ``--execute`` the finding is skipped: shadow tasks do not run the user's body. With
``--execute`` (documented as running the project's code) the task's module is imported in a
child process, the task runs eagerly with the literal arguments the source gives it in the
workflow, and its return value is serialized as the worker would: confirmed when it cannot be
serialized, or when the result is at least ``LARGE_BYTES``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from celery_chain_lint.harness.confirmers import (
    NO_REPLAY_DATA,
    Claim,
    confirmed,
    confirms,
    named_task,
    not_reproduced,
    required,
    skipped,
)
from celery_chain_lint.workflow.replay import Replay, ReplaySignature, walk

LARGE_BYTES = 16 * 1024


def project_root(path: str, module: str) -> Optional[str]:
    """The directory that makes ``module`` importable from ``path``."""
    parts = module.split(".")
    absolute = os.path.abspath(path)
    stem = os.path.splitext(absolute)[0]
    if os.path.basename(stem) == "__init__":
        stem = os.path.dirname(stem)
    for part in reversed(parts):
        if os.path.basename(stem) != part:
            return None
        stem = os.path.dirname(stem)
    return stem


def literal_call(replay: Replay, task: str) -> Tuple[Optional[List[Any]],
                                                     Optional[Dict[str, Any]], str]:
    """The literal arguments a workflow gives the task when nothing is prepended to them."""
    why = "no workflow calls it with arguments known statically"
    for workflow in replay.replayed_workflows():
        signatures = [node for node in walk(workflow.canvas)
                      if isinstance(node, ReplaySignature)]
        first = signatures[0] if signatures else None
        for node in signatures:
            if node.task != task:
                continue
            if node is not first and not node.immutable:
                why = "it receives the previous step's result, which only a full run can give"
                continue
            applied = workflow.application.args if node is first and \
                workflow.application is not None else None
            values = list(node.args or ()) + list(applied or ())
            if any(v.is_placeholder for v in values):
                why = "its arguments in the source are not literals"
                continue
            kwargs = {k: v.shown() for k, v in (node.kwargs or {}).items()}
            if any(isinstance(v, str) and v.startswith("<") for v in kwargs.values()):
                why = "its keyword arguments in the source are not literals"
                continue
            return [v.shown() for v in values], kwargs, ""
    return None, None, why


@confirms("CCL004", needs="none", needs_replay=False)
def confirm_large_result(claim: Claim, context) -> Any:
    # Said first: without --execute, nothing about the finding matters.
    if not context.options.execute:
        return skipped("the size of a result can only be measured by running the real task: "
                       "rerun with --execute (imports and runs your project's code)")
    replay = required(claim.replay, NO_REPLAY_DATA)
    why = "the replay data does not name the task and its module"
    spec = named_task(replay, why)
    name, module = spec.name, required(spec.module, why)
    root = project_root(spec.path or claim.path, module)
    if root is None:
        return skipped(f"cannot find the import root of {module} from {spec.path}")
    args, kwargs, why = literal_call(replay, name)
    if args is None:
        return skipped(f"cannot run {spec.display} alone: {why}")
    from celery_chain_lint.harness.execute import run_task

    measured = run_task(root, module, name, spec.display or "", args, kwargs,
                        context.timeout, context.env.workdir)
    call = (f"{spec.display}("
            + ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
            + ")")
    evidence = {"workflow": f"{call} run eagerly in a child process (imported from {root})",
                "predicted": claim.message, "measured": measured,
                "notes": ["--execute: the project's code was imported and run"]}
    if "error" in measured:
        return skipped(measured["error"], **evidence)
    if "failed" in measured:
        return skipped(f"the task failed with the source's arguments: {measured['failed']}",
                       **evidence)
    evidence["sizes"] = {k: measured[k] for k in ("result_bytes", "next_message_bytes")
                         if k in measured}
    if "encode_error" in measured:
        return confirmed(f"{call} returned a {measured['type']} that the "
                         f"{measured['serializer']} serializer cannot encode: "
                         f"{measured['encode_error']}", **evidence)
    size = measured.get("result_bytes", 0)
    if size >= LARGE_BYTES:
        return confirmed(f"{call} returned a {measured['type']} of {size:,} bytes serialized "
                         f"({measured.get('next_message_bytes', 0):,} bytes in the next "
                         "link's message)", **evidence)
    return not_reproduced(f"{call} returned {size:,} bytes serialized with the source's "
                          f"arguments (below {LARGE_BYTES:,})", **evidence)
