"""CCL018 json-unserializable: the flagged value (a set, a stand-in for a model instance or a
request) is passed to the task, or returned by its shadow; confirmed on kombu's EncodeError."""
from __future__ import annotations

import copy
from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    journal_runs,
    not_reproduced,
    skipped,
    walk,
)


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
