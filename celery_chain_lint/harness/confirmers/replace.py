"""CCL023 swallowed-replace: the task's shadow replaces itself inside a handler that swallows.

The flagged task's shadow runs first in a chain of two, followed by the harness's own task
(``ccl_verify.member``); its body calls ``self.replace(member.si("<replacement>"))`` inside a
handler catching what the flagged one catches, and swallows the ``Ignore``. Confirmed when the
shadow caught ``Ignore`` and went on, the replacement ran under the shadow's own task id, and
the next link ran twice (after the shadow and after the replacement); a contrast run with a
re-raising handler shows the next link running once. A replace() of another task is skipped.
"""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    not_reproduced,
    short,
)
from celery_chain_lint.harness.confirmers.swallowed_retry import swallowing_handler
from celery_chain_lint.workflow.replay import ReplayChain, ReplaySignature, ReplayWorkflow

MEMBER = "ccl_verify.member"


def _chain(name: str) -> ReplayWorkflow:
    # ``repair`` gives the (unflagged) replaced task complete arguments; the next link, flagged,
    # keeps receiving what comes before it.
    return ReplayWorkflow(ReplayChain((ReplaySignature(name, immutable=True),
                                       ReplaySignature(MEMBER, flagged=True))))


def _run(context, name: str, catches: str, reraise: bool):
    behaviour = {name: {"swallow_replace": {"catches": catches, "reraise": reraise,
                                            "with": MEMBER}}}
    return context.run(_chain(name), behaviour, repair=True, settle=0.3, quiet=0.6)


def _summary(run, name: str) -> Dict[str, Any]:
    nodes = run.built.nodes if run.built else []
    host = next((n.id for n in nodes if n.task == name), None)
    after = next((n.id for n in nodes if n.flagged), None)
    hosts = [e for e in run.journal if e.get("id") == host and e.get("task") == name]
    return {
        "host": hosts[0] if hosts else {},
        "replacement runs": [e for e in run.journal if e.get("id") == host
                             and e.get("task") == MEMBER],
        "next link runs": [e for e in run.journal if e.get("id") == after],
        "host state": run.observation.state(host) if host and run.observation else None,
        "host result": (run.observation.states.get(host, {}) if run.observation else {}
                        ).get("result"),
    }


@confirms("CCL023")
def confirm_swallowed_replace(claim: Claim, context) -> Any:
    name, handler, catches = swallowing_handler(
        claim, "the replace() called is another task's: the harness replays a task replacing "
               "itself only")
    run = _run(context, name, catches, reraise=False)
    evidence = context.evidence(run, predicted=claim.message, injected={
        name: f"the shadow's body does `try: self.replace({MEMBER}.si('<replacement>'))` and "
              f"catches {catches.rsplit('.', 1)[-1]} without re-raising, as "
              f"{handler.handler if handler else None} does"})
    task = short(name)
    seen = _summary(run, name)
    context.session.calm(run)
    contrast = _run(context, name, catches, reraise=True)
    other = _summary(contrast, name)
    received = [next(iter((e.get("args") or {}).values()), None) for e in seen["next link runs"]]
    evidence["measured"] = {
        "swallowing handler": {"host": seen["host"].get("outcome"),
                               "caught": seen["host"].get("caught"),
                               "host state": seen["host state"],
                               "host result": seen["host result"],
                               "replacement runs under the host's id":
                                   len(seen["replacement runs"]),
                               "next link runs": len(seen["next link runs"]),
                               "next link received": received},
        "re-raising handler": {"host": other["host"].get("outcome"),
                               "next link runs": len(other["next link runs"])},
    }
    swallowed = str(seen["host"].get("outcome", "")).startswith("swallowed")
    if swallowed and seen["replacement runs"] and len(seen["next link runs"]) >= 2:
        return confirmed(f"{task} caught {seen['host'].get('caught')} and went on (stored "
                         f"{seen['host state']}); the replacement ran under {task}'s id and "
                         f"the next link ran {len(seen['next link runs'])} times ({received}); "
                         f"with a handler that re-raises it ran "
                         f"{len(other['next link runs'])} time(s)", **evidence)
    if not seen["host"]:
        return not_reproduced(f"{task} did not run", **evidence)
    return not_reproduced(f"{task}: {seen['host'].get('outcome')}; the replacement ran "
                          f"{len(seen['replacement runs'])} time(s) under its id and the next "
                          f"link {len(seen['next link runs'])} time(s)", **evidence)
