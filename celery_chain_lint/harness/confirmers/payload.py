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
    confirmed,
    confirms,
    not_reproduced,
    skipped,
    walk,
    workflow_replays,
)
from celery_chain_lint.harness.replayer import value

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


def literal_call(replay: Dict[str, Any], task: str) -> Tuple[Optional[List[Any]],
                                                             Optional[Dict[str, Any]], str]:
    """The literal arguments a workflow gives the task when nothing is prepended to them."""
    why = "no workflow calls it with arguments known statically"
    for workflow in workflow_replays(replay):
        canvas = workflow.get("canvas") or {}
        first = None
        for node in walk(canvas):
            if node.get("type") == "signature":
                first = node
                break
        for node in walk(canvas):
            if node.get("type") != "signature" or node.get("task") != task:
                continue
            if node is not first and not node.get("immutable"):
                why = "it receives the previous step's result, which only a full run can give"
                continue
            values = list(node.get("args") or []) + list(
                (workflow.get("application") or {}).get("args") or [] if node is first else [])
            if any(isinstance(v, dict) and "placeholder" in v for v in values):
                why = "its arguments in the source are not literals"
                continue
            kwargs = {k: value(v) for k, v in (node.get("kwargs") or {}).items()}
            if any(isinstance(v, str) and v.startswith("<") for v in kwargs.values()):
                why = "its keyword arguments in the source are not literals"
                continue
            return [value(v) for v in values], kwargs, ""
    return None, None, why


@confirms("CCL004", needs="none")
def confirm_large_result(finding: Dict[str, Any], context) -> Any:
    if not context.options.execute:
        return skipped("the size of a result can only be measured by running the real task: "
                       "rerun with --execute (imports and runs your project's code)")
    replay = finding.get("replay") or {}
    spec = replay.get("task") or {}
    name, module = spec.get("name"), spec.get("module")
    if not name or not module:
        return skipped("the replay data does not name the task and its module")
    root = project_root(spec.get("path") or finding.get("path", ""), module)
    if root is None:
        return skipped(f"cannot find the import root of {module} from {spec.get('path')}")
    args, kwargs, why = literal_call(replay, name)
    if args is None:
        return skipped(f"cannot run {spec.get('display')} alone: {why}")
    from celery_chain_lint.harness.execute import run_task

    measured = run_task(root, module, name, spec.get("display") or "", args, kwargs,
                        context.timeout, context.env.workdir)
    call = (f"{spec.get('display')}("
            + ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
            + ")")
    evidence = {"workflow": f"{call} run eagerly in a child process (imported from {root})",
                "predicted": finding.get("message"), "measured": measured,
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
