"""The further pitfalls (CCL009 on): what the run shows for each.

- CCL009 errback-receives-task-id: the errback's parent is made to fail; confirmed when the
  errback runs as a task and the parameter named for the exception holds the failed task's id.
- CCL010 group-callback: confirmed when Celery refuses the link (``apply_async(link=...)`` on a
  group), or the callback does not run exactly once with the list of the members' results.
- CCL011 single-member-group: confirmed when the link after the one-member group receives the
  member's result itself (a scalar), not a list; a contrast run with the member twice shows the
  list a real group would pass.
- CCL012 swallowed-retry: the task's shadow runs alone; its body calls
  ``raise self.retry(countdown=0, max_retries=1)`` inside a handler catching what the flagged
  one catches, and swallows it. Confirmed when the first run ends SUCCESS and the retry message
  runs the body again (journal); a contrast run with a re-raising handler shows RETRY, then
  FAILURE (MaxRetriesExceededError). A retry of another task is skipped.
- CCL015 not-a-task: a plain (or ``async def``) function with the flagged name and parameters,
  built in the harness process; confirmed on Python's ``AttributeError`` for the attribute.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    first_task,
    flagged_signature,
    journal_runs,
    not_reproduced,
    skipped,
    walk,
)
from celery_chain_lint.harness.confirmers.arguments import failure_behaviours


def _flagged_callback(replay: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    for callback in replay.get("callbacks") or ():
        found = flagged_signature(callback.get("callback"))
        if found is not None:
            return found
    return None


@confirms("CCL009")
def confirm_errback_task_id(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay:
        return skipped("the finding carries no replay data")
    errback = _flagged_callback(replay)
    if errback is None:
        return skipped("the replay data does not say which errback is flagged")
    name = errback.get("task")
    behaviours = failure_behaviours(replay)
    errback_ids = set()

    def prepare(built):
        errback_ids.update(n.id for n in built.nodes if n.role.startswith("errback"))

    def errback_done(states):  # sent as a task, the errback has a state of its own
        return any(states.get(i, {}).get("state") in ("SUCCESS", "FAILURE")
                   for i in errback_ids)

    run = context.run(replay, behaviours, settle=0.3, stop_when=errback_done, prepare=prepare)
    evidence = context.evidence(run, predicted=finding.get("message"))
    evidence["injected"] = {task: "raises InjectedFailure so that the errback runs"
                            for task in behaviours}
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    failed_ids = {node.id for node in (run.built.nodes if run.built else ())
                  if run.observation.state(node.id) == "FAILURE"}
    executions = journal_runs(run, name)
    received = [e.get("args") or {} for e in executions]
    evidence["measured"] = {"errback runs": len(executions),
                            "errback received": received[0] if received else None}
    for arguments in received:
        for parameter, shown in arguments.items():
            if any(shown == repr(task_id) for task_id in failed_ids):
                return confirmed(f"{name.rsplit('.', 1)[-1]} ran as a task and its parameter "
                                 f"{parameter!r} received the failed task's id {shown}, not "
                                 "the exception", **evidence)
            # ``*args`` (shown as the tuple it received) led by the id.
            if any(shown.startswith(f"({task_id!r},") for task_id in failed_ids):
                return confirmed(f"{name.rsplit('.', 1)[-1]} ran as a task and its *{parameter} "
                                 f"received {shown}: the failed task's id, not (request, exc, "
                                 "traceback)", **evidence)
    if not executions:
        return not_reproduced("the errback did not run as a task (Celery called it inline or "
                              "not at all)", **evidence)
    return not_reproduced(f"the errback ran with {received[0]}: no parameter held the failed "
                          "task's id", **evidence)


def _callback_task(replay: Dict[str, Any]) -> Optional[str]:
    for callback in replay.get("callbacks") or ():
        if callback.get("kind") in ("link", "error"):
            return first_task(callback.get("callback"))
    return _group_link_task(replay)


def _group_link_task(replay: Dict[str, Any]) -> Optional[str]:
    """The callback given to a group itself: ``group(..., link=cb)``, ``g.set(link=cb)``."""
    for node in walk(replay.get("canvas")):
        for link in node.get("links") or () if node.get("type") == "group" else ():
            return first_task(link.get("callback"))
    return None


@confirms("CCL010")
def confirm_group_callback(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay:
        return skipped("the finding carries no replay data")
    name = _callback_task(replay)
    if name is None:
        return skipped("the replay data names no callback task for the group")
    kind = next((c.get("kind") for c in replay.get("callbacks") or ()), "link")
    behaviours = failure_behaviours(replay) if kind == "error" else {}
    run = context.run(replay, behaviours, settle=0.3, quiet=0.4)
    evidence = context.evidence(run, predicted=finding.get("message"))
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    short = name.rsplit(".", 1)[-1]
    if run.raised is not None:
        message = f"{type(run.raised).__name__}: {run.raised}"
        if isinstance(run.raised, TypeError) and "group" in str(run.raised):
            return confirmed(f"Celery refused the callback: {message}", **evidence)
        return not_reproduced(f"the workflow failed differently: {message}", **evidence)
    members = [n for n in (run.built.nodes if run.built else ())
               if ".group[" in n.role and n.task != name]
    executions = journal_runs(run, name)
    received = [e.get("args") for e in executions]
    evidence["measured"] = {"callback runs": len(executions), "group members": len(members),
                            "callback received": received}
    if kind == "error":
        if len(executions) != 1:
            return confirmed(f"the errback {short} ran {len(executions)} times for one failed "
                             "group", **evidence)
        return not_reproduced(f"the errback {short} ran once", **evidence)
    if len(executions) == 0:
        return confirmed(f"{short} never ran although the group ran", **evidence)
    if len(executions) > 1:
        return confirmed(f"{short} ran {len(executions)} times, once per member with that "
                         f"member's result ({received}), never once with the list", **evidence)
    only = received[0] or {}
    shows_list = any(str(v).startswith("[") for v in only.values())
    if not shows_list:
        first_end = min((e.get("end", 0) for e in run.journal if e.get("task") != name),
                        default=None)
        when = ""
        if first_end is not None and executions[0].get("start", 0) >= first_end:
            when = " as soon as the first member finished"
        return confirmed(f"{short} ran once{when}, with {only or 'no arguments'}: not with "
                         "the list of the group's results", **evidence)
    return not_reproduced(f"{short} ran once with {only}", **evidence)


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


SWALLOW_MAX_RETRIES = 1
CAUGHT_TEXT = {"builtins.BaseException": "BaseException (a bare except: catches the same)"}


def _run_swallowing(context, name: str, task: Dict[str, Any], catches: str, reraise: bool):
    alone = {"canvas": {"type": "signature", "task": name, "args": [], "kwargs": {},
                        "immutable": True, "via": "si", "flagged": False, "options": {}},
             "application": None, "callbacks": [], "tasks": {name: task}}
    behaviour = {name: {"swallow_retry": {"catches": catches, "reraise": reraise,
                                          "max_retries": SWALLOW_MAX_RETRIES}}}
    # The first run's end (SUCCESS, or FAILURE after the re-raised retries) ends the
    # observation; ``quiet`` then waits for the run the retry message causes.
    run = context.run(alone, behaviour, repair=True, settle=0.3, quiet=1.0)
    final = None
    if run.built is not None and run.built.nodes:
        from celery_chain_lint.harness.replayer import snapshot

        node = run.built.nodes[0].id
        final = snapshot(context.session.app, [node]).get(node, {})
    return run, final


@confirms("CCL012")
def confirm_swallowed_retry(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay:
        return skipped("the finding carries no replay data")
    task = replay.get("task") or {}
    name = task.get("name")
    if not name:
        return skipped("the replay data does not name the task")
    if not replay.get("retries_itself", True):
        return skipped("the retry() called is another task's: the harness replays a task "
                       "retrying itself only")
    catches = replay.get("catches") or "builtins.Exception"
    run, final = _run_swallowing(context, name, task, catches, reraise=False)
    evidence = context.evidence(run, predicted=finding.get("message"))
    short = name.rsplit(".", 1)[-1]
    caught = CAUGHT_TEXT.get(catches, catches.rsplit(".", 1)[-1])
    evidence["injected"] = {name: f"the shadow's body does `try: raise self.retry(countdown=0, "
                                  f"max_retries={SWALLOW_MAX_RETRIES})` and catches "
                                  f"{caught} without re-raising, as {replay.get('handler')} "
                                  "does"}
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    executions = journal_runs(run, name)
    first = run.observation.state(run.built.nodes[0].id) \
        if run.built and run.built.nodes and run.observation else None
    # Contrast: the same body with a handler that re-raises.
    context.session.calm(run)
    other, other_final = _run_swallowing(context, name, task, catches, reraise=True)
    other_runs = journal_runs(other, name)
    evidence["measured"] = {
        "swallowing handler": {"state after the first run": first,
                               "final state": (final or {}).get("state"),
                               "body runs": len(executions),
                               "runs": [{"retries": e.get("retries"),
                                         "outcome": e.get("outcome"),
                                         "caught": e.get("caught")} for e in executions]},
        "re-raising handler": {"final state": (other_final or {}).get("state"),
                               "final exception": (other_final or {}).get("exception"),
                               "body runs": len(other_runs),
                               "runs": [{"retries": e.get("retries"),
                                         "outcome": e.get("outcome")} for e in other_runs]},
    }
    swallowed = [e for e in executions if str(e.get("outcome", "")).startswith("swallowed")]
    if first == "SUCCESS" and len(executions) >= 2 and swallowed:
        end = (final or {}).get("state")
        contrast = (f"; with a handler that re-raises, the first run is recorded as a retry "
                    f"({other_runs[0].get('outcome')}) and the task ends "
                    f"{(other_final or {}).get('state')}") if other_runs else ""
        return confirmed(f"{short} caught its own Retry ({swallowed[0].get('caught')}), ended "
                         f"SUCCESS, and the retry message already sent ran its body again: "
                         f"{len(executions)} runs, final state {end}{contrast}", **evidence)
    if not executions:
        return not_reproduced(f"{short} did not run", **evidence)
    return not_reproduced(f"{short} ended {first} after its first run and its body ran "
                          f"{len(executions)} time(s)", **evidence)


NOT_A_TASK_SOURCE = "{kind}def {name}({params}):\n    return None\n"


@confirms("CCL015", needs="none")
def confirm_not_a_task(finding: Dict[str, Any], context) -> Any:
    from celery_chain_lint.harness.shadow import parameter_source

    replay = finding.get("replay")
    if replay and isinstance(replay.get("missing"), dict):
        return _confirm_missing(finding, replay["missing"], replay.get("method") or "delay")
    if not replay or not isinstance(replay.get("function"), dict):
        return skipped("the finding carries no replay data")
    function = replay["function"]
    name, method = function.get("name") or "", replay.get("method") or "delay"
    if not name.isidentifier() or not method.isidentifier():
        return skipped("the replay data names no function")
    try:
        params = parameter_source(function.get("params"), [])
    except ValueError as error:
        return skipped(f"cannot rebuild the function: {error}")
    source = NOT_A_TASK_SOURCE.format(kind="async " if function.get("is_async") else "",
                                      name=name, params=params)
    # A function with the flagged name and parameters, defined as the source defines it
    # (no decorator), in the harness process: the harness's own code, not the project's.
    namespace: Dict[str, Any] = {"__name__": "ccl_not_a_task", "_ccl_default": None}
    exec(compile(source, f"<ccl015 {name}>",
                 "exec"), namespace)  # noqa: S102 - ours
    target = namespace[name]
    evidence: Dict[str, Any] = {"predicted": finding.get("message"),
                                "notes": [f"rebuilt in the harness process as: "
                                          f"{source.splitlines()[0]} (no decorator, as in "
                                          f"{function.get('module')})"]}
    try:
        getattr(target, method)
    except AttributeError as error:
        evidence["exception"] = {"type": "AttributeError", "message": str(error),
                                 "where": f"looking up {name}.{method} (Python, before Celery "
                                          "is involved)"}
        return confirmed(f"AttributeError: {error}", **evidence)
    return not_reproduced(f"{name}.{method} exists on the rebuilt function", **evidence)


def _confirm_missing(finding: Dict[str, Any], missing: Dict[str, Any], method: str) -> Any:
    """``tasks.missing_task.delay()``: a module object with the flagged name and without the
    attribute (the analyser found no definition, import or assignment of it), in the harness
    process; looking the attribute up is Python's own AttributeError."""
    import types

    module, name = missing.get("module") or "", missing.get("name") or ""
    if not name.isidentifier():
        return skipped("the replay data names no attribute")
    stand_in = types.ModuleType(module)
    evidence: Dict[str, Any] = {"predicted": finding.get("message"),
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


@confirms("CCL017")
def confirm_enqueue_in_transaction(finding: Dict[str, Any], context) -> Any:
    return skipped("the race is with the project's database transaction: shadow tasks have no "
                   "database to read, so a run cannot show it")


class UnserializableStandIn:
    """A value the JSON serializer rejects, standing for a model instance or a request."""

    def __repr__(self) -> str:
        return "<model instance or request>"


def _stand_in(text: str, kind: str, data: Any) -> Any:
    if kind == "set":
        values = data.get("literal") if isinstance(data, dict) and "literal" in data else None
        return set(values) if isinstance(values, list) else {f"<{text}>"}
    return UnserializableStandIn()


@confirms("CCL018")
def confirm_json_unserializable(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay:
        return skipped("the finding carries no replay data")
    if replay.get("returns") == "set":
        return _confirm_returned_set(finding, replay, context)
    message = finding.get("message") or ""
    text, _, rest = message.partition(" is ")
    kind = "set" if rest.startswith("a set") else "object"
    marked = copy.deepcopy(replay)
    places = []
    application = marked.get("application") or {}
    places.append(application.get("args") or [])
    for node in walk(marked.get("canvas")):
        if node.get("type") == "signature":
            places.append(node.get("args") or [])
    target = None
    for args in places:
        for index, data in enumerate(args):
            if data.get("placeholder") == text or (
                    kind == "set" and "literal" in data and text.startswith("{")):
                target = (args, index, data)
                break
        if target:
            break
    if target is None:
        return skipped(f"cannot tell which argument is {text!r} in the replay data")
    args, index, data = target
    stand_in = _stand_in(text, kind, data)
    args[index] = {"stand_in": "value"}  # the unserializable value, where the source puts it
    run = context.run(marked, stand_ins={"value": stand_in})
    evidence = context.evidence(run, predicted=message)
    evidence["injected"] = {text: f"a {type(stand_in).__name__} ({stand_in!r}) in its place"}
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    failures = run.exceptions()
    encode = [f for f in failures if "EncodeError" in f["type"]
              or "not JSON serializable" in f["message"]]
    if encode:
        return confirmed(f"{encode[0]['type']}: {encode[0]['message']}", **evidence)
    if failures:
        return not_reproduced(f"the call failed differently: {failures[0]['type']}: "
                              f"{failures[0]['message']}", **evidence)
    return not_reproduced("the value was serialized and sent without error", **evidence)


RETURNED_SET = ["<segment-a>", "<segment-b>"]


def _arguments_for(spec: Dict[str, Any]):
    """Placeholders for the task's required parameters (bind's ``self`` is Celery's)."""
    args, kwargs = [], {}
    for param in spec.get("params") or ():
        if param.get("has_default"):
            continue
        if param.get("kind") in ("positional-only", "positional-or-keyword"):
            args.append({"placeholder": param.get("name")})
        elif param.get("kind") == "keyword-only":
            kwargs[param.get("name")] = {"placeholder": param.get("name")}
    if spec.get("bind") and args:
        args = args[1:]
    return args, kwargs


def _confirm_returned_set(finding: Dict[str, Any], replay: Dict[str, Any], context) -> Any:
    """The task's shadow returns a set, as its body does: run alone (its result is stored), or
    in the first workflow that sends its result on (the next task must get it)."""
    spec = replay.get("task") or {}
    name = spec.get("name")
    if not name:
        return skipped("the returning task has no literal registered name")
    short = name.rsplit(".", 1)[-1]
    behaviours = {name: {"return_set": RETURNED_SET}}
    injected = {name: f"its shadow returns {set(RETURNED_SET)!r}, a set, as the task body does"}
    workflows = [w for w in replay.get("workflows") or () if isinstance(w, dict)]
    if replay.get("result_passed"):
        if not workflows:
            return skipped("the replay data holds no workflow that sends the task's result on")
        workflow = workflows[0]
        flagged_ids = []

        def prepare(built):
            flagged_ids.extend(n.id for n in built.nodes if n.flagged)

        def returned(states):  # the returning task is done (stored, or from the journal)
            return bool(flagged_ids) and all(
                states.get(i, {}).get("state") in ("SUCCESS", "FAILURE") for i in flagged_ids)

        run = context.run(workflow, behaviours, stop_when=returned, prepare=prepare, quiet=1.0)
    else:
        args, kwargs = _arguments_for(spec)
        alone = {"canvas": {"type": "signature", "task": name, "args": args, "kwargs": kwargs,
                            "immutable": True, "via": "si", "flagged": True, "options": {}},
                 "application": None, "callbacks": [], "tasks": {name: spec}}
        run = context.run(alone, behaviours)
    evidence = context.evidence(run, predicted=finding.get("message"))
    evidence["injected"] = injected
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    if run.raised is not None:
        return not_reproduced(f"the workflow failed before the task ran: "
                              f"{type(run.raised).__name__}: {run.raised}", **evidence)
    executions = journal_runs(run, name)
    if not executions or "end" not in executions[0]:
        return not_reproduced(f"{short} did not run", **evidence)
    body_end = executions[0]["end"]
    flagged = [n for n in (run.built.nodes if run.built else ()) if n.flagged]
    state = run.observation.states.get(flagged[0].id, {}) if flagged else {}
    later = [e for e in run.journal if e.get("task") != name and e.get("start", 0) >= body_end]
    evidence["measured"] = {f"{short} body": executions[0].get("outcome"),
                            f"{short} state": state.get("state"),
                            "tasks run after it": len(later)}
    stored = state.get("exception") or ""
    encode = "EncodeError" in stored or "not JSON serializable" in stored
    if not replay.get("result_passed"):
        if state.get("state") == "FAILURE" and encode:
            return confirmed(f"{short}'s body returned a set and succeeded, but the task ended "
                             f"FAILURE with {stored}", **evidence)
        return not_reproduced(f"{short} ended {state.get('state')}"
                              f"{': ' + stored if stored else ''}", **evidence)
    following = [n for n in run.built.nodes if not n.flagged and n.task != name
                 and run.observation.state(n.id) == "PENDING"]
    if later:
        return not_reproduced(f"{len(later)} task(s) ran after {short} returned the set",
                              **evidence)
    if not following:
        return not_reproduced(f"no step of the workflow was left waiting after {short}",
                              **evidence)
    waiting = sorted({n.task for n in following})
    # Contrast: the same workflow with the task returning a list; the next step must run.
    contrast = context.run(workflow, {name: {"return": RETURNED_SET}}, quiet=0.5)
    ran = [e for e in contrast.journal if e.get("task") in waiting]
    evidence["measured"]["tasks run after it when it returns a list"] = len(ran)
    shown = ", ".join(w.rsplit(".", 1)[-1] for w in waiting)
    if not ran:
        return not_reproduced(f"{shown} did not run either when {short} returned a list",
                              **evidence)
    if encode:
        how = f"ended FAILURE with {stored}"
    elif flagged and flagged[0].ignores_result and state.get("state") == "PENDING":
        how = "recorded no failure (it ignores results: no state is stored)"
    else:
        how = f"ended {state.get('state')}"
    return confirmed(f"{short}'s body returned a set and the task {how}; the next step "
                     f"({shown}) never ran, while it ran when {short} returned a list",
                     **evidence)
