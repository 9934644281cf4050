"""``celery-chain-lint verify``: replay every finding on a real worker and report the verdicts.

``verify_findings`` takes findings as JSON (``Finding.to_json()``), so it does not care where
they came from; the CLI feeds it ``engine.check``'s. Each is read once into a ``Claim`` (its
replay data typed, ``workflow/replay.py``): the rest of the harness reads only those.
Findings are grouped into batches whose shadow tasks agree (two tasks registered under one
name with different signatures go to different batches); each batch gets one shadow app and
one worker process, started only when a confirmer needs it. Everything the run created is removed at the end, whatever happened.
"""
from __future__ import annotations

import gc
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, TextIO

from celery_chain_lint.harness.confirmers import (
    CONFIRMED,
    NOT_REPRODUCED,
    SKIPPED,
    Claim,
    Verdict,
    confirmer_for,
    replay_tasks,
    skipped,
    worker_alive,
)
from celery_chain_lint.harness.environment import (
    BrokerTrouble,
    Environment,
    InfrastructureError,
    is_connection_error,
)
from celery_chain_lint.harness.replayer import Unreplayable
from celery_chain_lint.workflow.replay import Replay, ReplayTask, ReplayWorkflow

DEFAULT_TIMEOUT = 10.0


@dataclass
class Options:
    broker: Optional[str] = None
    backend: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT  # per workflow run
    execute: bool = False  # CCL004: import and run the user's tasks
    connect_timeout: float = 3.0
    startup_timeout: float = 30.0
    pool: str = "threads"
    concurrency: int = 8
    keep_workdir: bool = False
    outage_grace: float = 15.0  # how long a broker that went away mid-run may take to return
    # Behaviours forced on shadow tasks in every run, {task name: behaviour}: the harness's
    # own fault-injection hook (its tests hang, kill or slow a task with it).
    inject: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    paths: List[str] = field(default_factory=list)  # what was analysed (CCL004 --execute)


class Context:
    """What a confirmer gets: runs on the worker, the environment, the user's options."""

    def __init__(self, verifier: "Verifier", batch: "Batch"):
        self.verifier = verifier
        self.batch = batch
        self.options = verifier.options
        self.env = verifier.env
        self.timeout = verifier.options.timeout
        self.hung: List[str] = []  # runs that did not finish within their time bound

    @property
    def session(self):
        return self.batch.session_for(self.verifier)

    def run(self, replay: ReplayWorkflow, behaviours: Optional[Dict[str, Any]] = None,
            **kwargs):
        """One replay on the worker. Raises BrokerTrouble when the broker or the backend did
        not answer during it: the confirmer must not judge a run that did not happen."""
        kwargs.setdefault("timeout", self.timeout)
        if self.options.inject:
            behaviours = {**(behaviours or {}), **self.options.inject}
        run = self.session.run(replay, behaviours, **kwargs)
        if run.timed_out:
            self.hung.append(f"did not finish within {kwargs['timeout']:g}s")
        if run.raised is not None and is_connection_error(run.raised):
            raise BrokerTrouble(f"{type(run.raised).__name__}: {run.raised}")
        states = run.observation.states.values() if run.observation is not None else ()
        unknown = [s for s in states if s.get("state") == "UNKNOWN"]
        if unknown:
            raise BrokerTrouble(f"the result backend did not answer: {unknown[0].get('error')}")
        return run

    def evidence(self, run, predicted: Optional[str] = None, *,
                 runs: Optional[Dict[str, Any]] = None, **extra: Any) -> Dict[str, Any]:
        """What ``run`` showed, ``extra`` entries after it (``notes`` added to the run's).
        Raises ``WorkerDied`` (the finding is skipped, with this evidence) when the worker
        died during ``run``, or during one of ``runs`` instead when given (by label:
        ``{"chain": ..., "group": ...}``; ``{}`` for none)."""
        evidence: Dict[str, Any] = {}
        if run.built is not None:
            evidence["workflow"] = run.built.text
        if predicted:
            evidence["predicted"] = predicted
        if run.raised is not None:
            evidence["raised"] = {"type": type(run.raised).__name__, "message": str(run.raised),
                                  "while": run.raised_at_text()}
        evidence["nodes"] = run.nodes()
        evidence["timings"] = {"elapsed_s": round(run.elapsed, 4)}
        if run.timed_out:
            evidence["timings"]["timed_out_after_s"] = self.timeout
        if run.notes:
            evidence["notes"] = list(run.notes)
        for key, value in extra.items():
            if key == "notes":
                evidence["notes"] = evidence.get("notes", []) + list(value)
            else:
                evidence[key] = value
        return worker_alive(evidence, {"": run} if runs is None else runs)


class Batch:
    """Findings whose shadow tasks agree, served by one session (app + worker)."""

    def __init__(self, index: int):
        self.index = index
        self.tasks: Dict[str, ReplayTask] = {}
        self.members: List[int] = []
        self.session = None

    @staticmethod
    def _key(spec: ReplayTask) -> Any:
        """What two shadows registered under one name must agree on."""
        return (spec.params, spec.bind, spec.class_based,
                repr(sorted(spec.options.items())))

    def accepts(self, tasks: Dict[str, ReplayTask]) -> bool:
        # A lenient spec (a task known only by name) agrees with any other.
        return all(name not in self.tasks or spec.lenient or self.tasks[name].lenient
                   or self._key(self.tasks[name]) == self._key(spec)
                   for name, spec in tasks.items())

    def add(self, index: int, tasks: Dict[str, ReplayTask]) -> None:
        self.members.append(index)
        for name, spec in tasks.items():
            if name is None or not spec.name:
                continue
            if name not in self.tasks or (self.tasks[name].lenient and not spec.lenient):
                self.tasks[name] = spec

    def session_with(self, verifier: "Verifier", key: str, conf: Dict[str, Any]):
        """A second session of this batch's tasks with settings of its own (``key`` names
        them; started once, closed with the batch)."""
        sessions = self.__dict__.setdefault("extra_sessions", {})
        if key not in sessions:
            from celery_chain_lint.harness.session import Session

            options = verifier.options
            session = Session(verifier.env, self.tasks, pool=options.pool,
                              concurrency=options.concurrency,
                              startup_timeout=options.startup_timeout,
                              index=1000 + 100 * self.index + len(sessions),
                              conf_overrides=conf)
            try:
                session.start()
            except BaseException:
                session.close()
                raise
            sessions[key] = session
        return sessions[key]

    def session_for(self, verifier: "Verifier"):
        if self.session is None:
            from celery_chain_lint.harness.session import Session

            options = verifier.options
            session = Session(verifier.env, self.tasks, pool=options.pool,
                              concurrency=options.concurrency,
                              startup_timeout=options.startup_timeout, index=self.index)
            try:
                session.start()
            except BaseException:
                session.close()
                raise
            self.session = session
            verifier.worker_started_in.append(session.worker.started_in)
        return self.session

    def close(self) -> None:
        for session in self.__dict__.pop("extra_sessions", {}).values():
            gc.collect()
            session.close()
        if self.session is not None:
            # Results of the runs hold on to the backend (Redis unsubscribes in __del__):
            # collect them while the app still has its connections, not at interpreter exit.
            gc.collect()
            self.session.close()
            self.session = None
            gc.collect()


def plan_batches(replays: List[Optional[Replay]]) -> List[Batch]:
    """Batches of the findings (by index) whose replays' shadow tasks agree."""
    batches: List[Batch] = []
    for index, replay in enumerate(replays):
        tasks = replay_tasks(replay)
        for batch in batches:
            if batch.accepts(tasks):
                batch.add(index, tasks)
                break
        else:
            batch = Batch(len(batches))
            batch.add(index, tasks)
            batches.append(batch)
    return batches


Progress = Callable[[int, int, Dict[str, Any], Optional[Dict[str, Any]]], None]


class Verifier:
    def __init__(self, options: Options):
        self.options = options
        self.env = Environment(options.broker, options.backend,
                               connect_timeout=options.connect_timeout,
                               keep_workdir=options.keep_workdir)
        self.worker_started_in: List[float] = []
        self.cleanup_problems: List[str] = []

    def confirm(self, claim: Claim, batch: Batch) -> Verdict:
        code = claim.code
        confirmer = confirmer_for(code)
        if confirmer is None:
            return skipped(f"no runtime confirmation exists for {code} yet: the harness cannot "
                           "show this finding on a worker")
        outage = None
        for attempt in (1, 2):
            try:
                context = Context(self, batch)
                verdict = confirmer(claim, context)
                if outage is not None:
                    verdict.evidence.setdefault("notes", []).append(
                        f"the broker or the backend went away during the first replay "
                        f"({outage}); replayed once after it answered again")
                if context.hung and verdict.status != CONFIRMED:
                    # A hung run proves nothing either way.
                    notes = verdict.evidence.setdefault("notes", [])
                    notes.append(f"the confirmer's verdict was: {verdict.status}: "
                                 f"{verdict.reason}")
                    return Verdict(SKIPPED, f"the workflow {context.hung[0]} (the worker was "
                                   "restarted)", verdict.evidence)
                return verdict
            except Unreplayable as error:
                return skipped(f"cannot be replayed: {error}")
            except InfrastructureError:
                raise
            except Exception as error:  # noqa: BLE001 - one finding must not end the run
                trouble = isinstance(error, BrokerTrouble) or is_connection_error(error)
                detail = traceback.format_exception_only(type(error), error)[-1].strip()
                if not trouble:
                    return skipped(f"the harness failed on this finding: {detail}")
                outage = detail
                # The broker or the backend went away mid-run: wait (bounded) for it to
                # answer again, give the batch a fresh worker, and replay the finding once.
                self.wait_for_services(detail)
                if batch.session is not None:
                    batch.session.recover("the broker or the backend went away")
                if attempt == 2:
                    return skipped(f"the broker or the result backend did not answer during "
                                   f"the run: {detail}")
        return skipped("unreachable")  # pragma: no cover

    def wait_for_services(self, detail: str) -> None:
        """Until the broker and the backend answer, at most ``outage_grace`` seconds."""
        deadline = time.monotonic() + self.options.outage_grace
        while True:
            try:
                self.env.preflight()
                return
            except InfrastructureError as error:
                if time.monotonic() >= deadline:
                    raise InfrastructureError(
                        f"the broker or the result backend went away during the run and did "
                        f"not come back within {self.options.outage_grace:g}s ({error}; "
                        f"first seen as {detail})") from None
                time.sleep(0.5)

    def run(self, findings: List[Dict[str, Any]], progress: Optional[Progress] = None
            ) -> List[Dict[str, Any]]:
        try:
            self.env.preflight()
        except BaseException:
            self.cleanup_problems = self.env.cleanup()
            raise
        results: List[Optional[Dict[str, Any]]] = [None] * len(findings)
        backend = self.env.describe()
        backend["worker"] = (f"celery worker in its own process, {self.options.pool} pool, "
                             f"concurrency {self.options.concurrency}")
        done = 0
        claims = [Claim.from_json(finding) for finding in findings]
        try:
            for batch in plan_batches([claim.replay for claim in claims]):
                try:
                    for index in batch.members:
                        finding = findings[index]
                        if progress is not None:
                            progress(done, len(findings), finding, None)
                        started = time.monotonic()
                        verdict = self.confirm(claims[index], batch)
                        result = dict(finding)
                        result["status"] = verdict.status
                        result["reason"] = verdict.reason
                        evidence = dict(verdict.evidence)
                        evidence.setdefault("timings", {})["verify_s"] = round(
                            time.monotonic() - started, 4)
                        result["evidence"] = evidence
                        result["backend"] = backend
                        results[index] = result
                        done += 1
                        if progress is not None:
                            progress(done, len(findings), finding, result)
                finally:
                    batch.close()
        finally:
            self.cleanup_problems = self.env.cleanup()
        return [r for r in results if r is not None]


def verify_findings(findings: List[Dict[str, Any]], options: Optional[Options] = None,
                    progress: Optional[Progress] = None) -> List[Dict[str, Any]]:
    return Verifier(options or Options()).run(findings, progress)


# ---- reports ----


def summary_counts(results: List[Dict[str, Any]]) -> Dict[str, int]:
    counts = {CONFIRMED: 0, NOT_REPRODUCED: 0, SKIPPED: 0}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    return counts


def _node_line(nodes: List[Dict[str, Any]]) -> str:
    parts = []
    for node in nodes:
        name = (node.get("task") or "?").rsplit(".", 1)[-1]
        parts.append(f"{name}={node.get('state')}" + ("*" if node.get("flagged") else ""))
    return ", ".join(parts)


def render_text(result: Dict[str, Any]) -> str:
    head = (f"{result['path']}:{result['line']}:{result['column']}: {result['code']} "
            f"{result['status']}: {result['reason']}")
    evidence = result.get("evidence") or {}
    lines = [head]
    if evidence.get("workflow"):
        lines.append(f"    workflow: {evidence['workflow']}")
    exception = evidence.get("exception")
    if exception and exception.get("where"):
        lines.append(f"    where: {exception['where']}")
    if evidence.get("nodes"):
        lines.append(f"    nodes: {_node_line(evidence['nodes'])}")
    for key, value in (evidence.get("measured") or {}).items():
        lines.append(f"    {key}: {value}")
    for note in evidence.get("notes") or ():
        lines.append(f"    note: {note}")
    return "\n".join(lines)


def render_summary(results: List[Dict[str, Any]], backend: Dict[str, Any]) -> str:
    counts = summary_counts(results)
    return (f"Verified {len(results)} finding{'s' if len(results) != 1 else ''} on "
            f"broker {backend.get('broker')}, backend {backend.get('backend')} "
            f"(Celery {backend.get('celery')}): {counts[CONFIRMED]} confirmed, "
            f"{counts[NOT_REPRODUCED]} not reproduced, {counts[SKIPPED]} skipped.")


class ProgressPrinter:
    """A progress bar on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO, output_format: str, out: TextIO):
        self.stream = stream
        self.out = out
        self.format = output_format
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._drawn = False

    def _clear(self):
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False

    def __call__(self, done: int, total: int, finding: Dict[str, Any],
                 result: Optional[Dict[str, Any]]) -> None:
        location = f"{finding.get('path')}:{finding.get('line')}"
        if result is None:
            if self.tty:
                width = 24
                filled = int(width * done / total) if total else width
                self._clear()
                self.stream.write(f"verify [{'#' * filled}{'.' * (width - filled)}] "
                                  f"{done}/{total} {finding.get('code')} {location}")
                self.stream.flush()
                self._drawn = True
            return
        self._clear()
        if self.format == "text":
            self.out.write(render_text(result) + "\n")
            self.out.flush()
        elif not self.tty:
            self.stream.write(f"verify: {done}/{total} {result['code']} {location}: "
                              f"{result['status']}\n")
            self.stream.flush()

    def finish(self):
        self._clear()


def main_verify(paths: List[str], options: Options, output_format: str, settings=None,
                out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                html_path: Optional[str] = None) -> int:
    """The ``verify`` command: 0 none confirmed, 1 some confirmed, 2 infrastructure error.
    ``html_path``: also draw each finding's workflow there (``reporters/graph.py``)."""
    import json

    from celery_chain_lint import engine

    try:
        import celery  # noqa: F401
    except ImportError:
        err.write("error: verify needs Celery: pip install 'celery-chain-lint[verify]'\n")
        return 2
    report = engine.check(paths, settings)
    findings = [finding.to_json() for finding in report.findings]
    options.paths = list(paths)
    printer = ProgressPrinter(err, output_format, out)
    verifier = Verifier(options)
    try:
        results = verifier.run(findings, printer)
    except InfrastructureError as error:
        printer.finish()
        err.write(f"error: {error}\n")
        return 2
    finally:
        printer.finish()
    if output_format == "json":
        out.write(json.dumps(results, indent=2, default=repr) + "\n")
    else:
        out.write(render_summary(results, verifier.env.describe()) + "\n")
    for problem in verifier.cleanup_problems:
        err.write(f"warning: cleanup: {problem}\n")
    from celery_chain_lint.reporters.graph import write_html

    if html_path and not write_html(html_path, results, "celery-chain-lint verify", err):
        return 2
    return 1 if any(r["status"] == CONFIRMED for r in results) else 0

