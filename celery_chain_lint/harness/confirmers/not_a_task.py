"""CCL015 not-a-task: a plain (or ``async def``) function with the flagged name and parameters,
built in the harness process; confirmed on Python's ``AttributeError`` for the attribute."""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    not_reproduced,
    required,
    skipped,
)
from celery_chain_lint.workflow.replay import MissingAttribute


NOT_A_TASK_SOURCE = "{kind}def {name}({params}):\n    return None\n"


@confirms("CCL015", needs="none")
def confirm_not_a_task(claim: Claim, context) -> Any:
    from celery_chain_lint.harness.shadow import parameter_source

    replay = claim.replay
    method = replay.method or "delay"
    if replay.missing is not None:
        return _confirm_missing(claim, replay.missing, method)
    function = required(replay.function, "the finding carries no replay data")
    name = function.name or ""
    if not name.isidentifier() or not method.isidentifier():
        return skipped("the replay data names no function")
    try:
        params = parameter_source(function.params, [])
    except ValueError as error:
        return skipped(f"cannot rebuild the function: {error}")
    source = NOT_A_TASK_SOURCE.format(kind="async " if function.is_async else "",
                                      name=name, params=params)
    # A function with the flagged name and parameters, defined as the source defines it
    # (no decorator), in the harness process: the harness's own code, not the project's.
    namespace: Dict[str, Any] = {"__name__": "ccl_not_a_task", "_ccl_default": None}
    exec(compile(source, f"<ccl015 {name}>",
                 "exec"), namespace)  # noqa: S102 - ours
    target = namespace[name]
    evidence: Dict[str, Any] = {"predicted": claim.message,
                                "notes": [f"rebuilt in the harness process as: "
                                          f"{source.splitlines()[0]} (no decorator, as in "
                                          f"{function.module})"]}
    try:
        getattr(target, method)
    except AttributeError as error:
        evidence["exception"] = {"type": "AttributeError", "message": str(error),
                                 "where": f"looking up {name}.{method} (Python, before Celery "
                                          "is involved)"}
        return confirmed(f"AttributeError: {error}", **evidence)
    return not_reproduced(f"{name}.{method} exists on the rebuilt function", **evidence)


def _confirm_missing(claim: Claim, missing: MissingAttribute, method: str) -> Any:
    """``tasks.missing_task.delay()``: a module object with the flagged name and without the
    attribute (the analyser found no definition, import or assignment of it), in the harness
    process; looking the attribute up is Python's own AttributeError."""
    import types

    module, name = missing.module or "", missing.name or ""
    if not name.isidentifier():
        return skipped("the replay data names no attribute")
    stand_in = types.ModuleType(module)
    evidence: Dict[str, Any] = {"predicted": claim.message,
                                "notes": [f"a module named {module} without {name!r}, as the "
                                          "analysed source defines it"]}
    try:
        getattr(getattr(stand_in, name), method)
    except AttributeError as error:
        evidence["exception"] = {"type": "AttributeError", "message": str(error),
                                 "where": f"looking up {module}.{name} (Python, before Celery "
                                          "is involved)"}
        return confirmed(f"AttributeError: {error}", **evidence)
    return not_reproduced(f"{module}.{name} exists", **evidence)
