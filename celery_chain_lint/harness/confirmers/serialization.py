"""CCL018 json-unserializable: the flagged value (a set, a stand-in for a model instance or a
request) is passed to the task, or returned by its shadow; confirmed on kombu's EncodeError."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional, Tuple

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    journal_runs,
    named_task,
    not_reproduced,
    required,
    short,
)
from celery_chain_lint.workflow.replay import (
    Replay,
    ReplaySignature,
    ReplayTask,
    ReplayValue,
    ReplayWorkflow,
    rewrite,
    walk,
)


class UnserializableStandIn:
    """A value the JSON serializer rejects, standing for a model instance or a request."""

    def __repr__(self) -> str:
        return "<model instance or request>"


def _stand_in(text: str, kind: str, data: ReplayValue) -> Any:
    if kind == "set":
        values = data.content if data.is_literal else None
        return set(values) if isinstance(values, list) else {f"<{text}>"}
    return UnserializableStandIn()


def _shown(value: Any) -> str:
    """``repr`` of a stand-in, a set's members in a fixed order: the evidence of two runs of
    ``verify`` must not differ by the hash seed."""
    if isinstance(value, (set, frozenset)) and value:
        return "{" + ", ".join(sorted(repr(member) for member in value)) + "}"
    return repr(value)


def _is_flagged_value(data: ReplayValue, text: str, kind: str) -> bool:
    """The argument the message names: its placeholder, or a literal set written ``{...}``."""
    return (data.is_placeholder and data.content == text) or (
        kind == "set" and data.is_literal and text.startswith("{"))


def _with_stand_in(workflow: ReplayWorkflow, text: str,
                   kind: str) -> Optional[Tuple[ReplayWorkflow, ReplayValue]]:
    """The workflow with the flagged argument replaced by the harness's stand-in (the first
    match: in the arguments it is applied with, else in a signature's), and the argument."""
    stand_in = ReplayValue.stand_in("value")

    def swapped(args):
        for index, data in enumerate(args or ()):
            if _is_flagged_value(data, text, kind):
                return args[:index] + (stand_in,) + args[index + 1:], data
        return None

    application = workflow.application
    found = swapped(application.args) if application is not None else None
    if found is not None:
        return replace(workflow, application=replace(application, args=found[0])), found[1]
    target = next((node for node in walk(workflow.canvas) if isinstance(node, ReplaySignature)
                   and swapped(node.args) is not None), None)
    if target is None:
        return None
    args, data = swapped(target.args)
    canvas = rewrite(workflow.canvas,
                     lambda node: replace(node, args=args) if node is target else node)
    return replace(workflow, canvas=canvas), data


@confirms("CCL018")
def confirm_json_unserializable(claim: Claim, context) -> Any:
    replay = claim.replay
    if replay.returned_set is not None:
        return _confirm_returned_set(claim, replay, context)
    workflow = required(replay.workflow, "the replay data holds no workflow")
    message = claim.message
    text, _, rest = message.partition(" is ")
    kind = "set" if rest.startswith("a set") else "object"
    found = required(_with_stand_in(workflow, text, kind),
                     f"cannot tell which argument is {text!r} in the replay data")
    marked, data = found
    stand_in = _stand_in(text, kind, data)
    run = context.run(marked, stand_ins={"value": stand_in})
    evidence = context.evidence(run, predicted=message, injected={
        text: f"a {type(stand_in).__name__} ({_shown(stand_in)}) in its place"})
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


def _arguments_for(spec: ReplayTask):
    """Placeholders for the task's required parameters (bind's ``self`` is Celery's)."""
    args, kwargs = [], {}
    for param in spec.params or ():
        if param.has_default:
            continue
        if param.kind in ("positional-only", "positional-or-keyword"):
            args.append(ReplayValue.placeholder(param.name))
        elif param.kind == "keyword-only":
            kwargs[param.name] = ReplayValue.placeholder(param.name)
    if spec.bind and args:
        args = args[1:]
    return tuple(args), kwargs


def _confirm_returned_set(claim: Claim, replay: Replay, context) -> Any:
    """The task's shadow returns a set, as its body does: run alone (its result is stored), or
    in the first workflow that sends its result on (the next task must get it)."""
    spec = named_task(replay, "the returning task has no literal registered name")
    name = spec.name
    task = short(name)
    behaviours = {name: {"return_set": RETURNED_SET}}
    injected = {name: f"its shadow returns {_shown(set(RETURNED_SET))}, a set, as the task "
                      f"body does"}
    result_passed = replay.returned_set.result_passed
    if result_passed:
        workflow = required(replay.replayed_workflows(), "the replay data holds no workflow "
                                                         "that sends the task's result on")[0]
        flagged_ids = []

        def prepare(built):
            flagged_ids.extend(n.id for n in built.nodes if n.flagged)

        def returned(states):  # the returning task is done (stored, or from the journal)
            return bool(flagged_ids) and all(
                states.get(i, {}).get("state") in ("SUCCESS", "FAILURE") for i in flagged_ids)

        run = context.run(workflow, behaviours, stop_when=returned, prepare=prepare, quiet=1.0)
    else:
        args, kwargs = _arguments_for(spec)
        alone = ReplayWorkflow(ReplaySignature(name, args, kwargs, immutable=True, via="si",
                                               flagged=True))
        run = context.run(alone, behaviours)
    evidence = context.evidence(run, predicted=claim.message, injected=injected)
    if run.raised is not None:
        return not_reproduced(f"the workflow failed before the task ran: "
                              f"{type(run.raised).__name__}: {run.raised}", **evidence)
    executions = journal_runs(run, name)
    if not executions or "end" not in executions[0]:
        return not_reproduced(f"{task} did not run", **evidence)
    body_end = executions[0]["end"]
    flagged = [n for n in (run.built.nodes if run.built else ()) if n.flagged]
    state = run.observation.states.get(flagged[0].id, {}) if flagged else {}
    later = [e for e in run.journal if e.get("task") != name and e.get("start", 0) >= body_end]
    evidence["measured"] = {f"{task} body": executions[0].get("outcome"),
                            f"{task} state": state.get("state"),
                            "tasks run after it": len(later)}
    stored = state.get("exception") or ""
    encode = "EncodeError" in stored or "not JSON serializable" in stored
    if not result_passed:
        if state.get("state") == "FAILURE" and encode:
            return confirmed(f"{task}'s body returned a set and succeeded, but the task ended "
                             f"FAILURE with {stored}", **evidence)
        return not_reproduced(f"{task} ended {state.get('state')}"
                              f"{': ' + stored if stored else ''}", **evidence)
    following = [n for n in run.built.nodes if not n.flagged and n.task != name
                 and run.observation.state(n.id) == "PENDING"]
    if later:
        return not_reproduced(f"{len(later)} task(s) ran after {task} returned the set",
                              **evidence)
    if not following:
        return not_reproduced(f"no step of the workflow was left waiting after {task}",
                              **evidence)
    waiting = sorted({n.task for n in following})
    # Contrast: the same workflow with the task returning a list; the next step must run.
    contrast = context.run(workflow, {name: {"return": RETURNED_SET}}, quiet=0.5)
    ran = [e for e in contrast.journal if e.get("task") in waiting]
    evidence["measured"]["tasks run after it when it returns a list"] = len(ran)
    shown = ", ".join(w.rsplit(".", 1)[-1] for w in waiting)
    if not ran:
        return not_reproduced(f"{shown} did not run either when {task} returned a list",
                              **evidence)
    if encode:
        how = f"ended FAILURE with {stored}"
    elif flagged and flagged[0].ignores_result and state.get("state") == "PENDING":
        how = "recorded no failure (it ignores results: no state is stored)"
    else:
        how = f"ended {state.get('state')}"
    return confirmed(f"{task}'s body returned a set and the task {how}; the next step "
                     f"({shown}) never ran, while it ran when {task} returned a list",
                     **evidence)
