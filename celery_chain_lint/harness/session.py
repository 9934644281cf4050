"""One shadow app and its worker process: runs replays one at a time and records what happened."""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from celery_chain_lint.harness.environment import (
    BrokerTrouble,
    Environment,
    InfrastructureError,
)
from celery_chain_lint.harness.replayer import (
    Built,
    CompositionError,
    Observation,
    Unreplayable,
    build,
    observe,
    snapshot,
)
from celery_chain_lint.harness.worker import DEFAULT_CONCURRENCY, DEFAULT_POOL, WorkerProcess
from celery_chain_lint.workflow.replay import ReplayTask, ReplayWorkflow


@dataclass
class Run:
    """What one replay did."""

    built: Optional[Built]
    raised: Optional[BaseException] = None
    raised_at: Optional[str] = None  # "compose" (building the canvas) or "apply"
    observation: Optional[Observation] = None
    journal: List[Dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    notes: List[str] = field(default_factory=list)
    start_wall: Optional[float] = None  # time.time() when the workflow was applied
    run_id: Optional[str] = None

    @property
    def worker_died(self) -> Optional[str]:
        return self.observation.worker if self.observation is not None else None

    @property
    def timed_out(self) -> bool:
        return bool(self.observation and self.observation.timed_out)

    def exceptions(self) -> List[Dict[str, Any]]:
        """Every failure seen: the synchronous one first, then the nodes' (with their role)."""
        found = []
        if self.raised is not None:
            found.append({"type": type(self.raised).__name__, "message": str(self.raised),
                          "where": f"raised in the caller while {self.raised_at_text()}",
                          "role": None, "task": None})
        if self.observation is not None and self.built is not None:
            for node in self.built.nodes + self.built.outside:
                state = self.observation.states.get(node.id, {})
                if state.get("state") == "FAILURE":
                    text = state.get("exception") or ""
                    type_name, _, message = text.partition(": ")
                    found.append({"type": state.get("exception_type") or type_name,
                                  "message": message, "where": "stored on the node by the worker",
                                  "role": node.role, "task": node.task})
        return found

    def raised_at_text(self) -> str:
        return {"compose": "composing the canvas",
                "apply": "applying the workflow (publishing its first message)"}.get(
                    self.raised_at or "", self.raised_at or "")

    def nodes(self) -> List[Dict[str, Any]]:
        out = []
        if self.built is None:
            return out
        ran = {}
        for entry in self.journal:
            ran.setdefault(entry.get("id"), []).append(entry)
        for node in self.built.nodes + self.built.outside:
            state = (self.observation.states.get(node.id, {}) if self.observation else {})
            item: Dict[str, Any] = {"task": node.task, "role": node.role, "id": node.id,
                                    "state": state.get("state", "PENDING")}
            if node.flagged:
                item["flagged"] = True
            for key in ("exception", "result", "result_bytes", "date_done"):
                if key in state:
                    item[key] = state[key] if key != "result" else _short(state[key])
            executions = ran.get(node.id, [])
            item["executions"] = len(executions)
            if executions:
                first = executions[0]
                if self.start_wall is not None and first.get("start"):
                    item["started_at"] = round(first["start"] - self.start_wall, 4)
                    item["ended_at"] = round(executions[-1].get("end", first["start"])
                                             - self.start_wall, 4)
            out.append(item)
        return out


def _short(value: Any, limit: int = 200) -> Any:
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Session:
    """A shadow app (client side) and its worker subprocess, for one set of task specs."""

    def __init__(self, env: Environment, tasks: Dict[str, ReplayTask], *,
                 pool: str = DEFAULT_POOL, concurrency: int = DEFAULT_CONCURRENCY,
                 startup_timeout: float = 30.0, index: int = 0,
                 conf_overrides: Optional[Dict[str, Any]] = None):
        from celery_chain_lint.harness.shadow import Control, Journal, build_app

        self.env = env
        self.directory = os.path.join(env.workdir, f"session-{index}")
        os.makedirs(self.directory, exist_ok=True)
        from celery_chain_lint.harness.confirmers.returns_canvas import HELPERS

        tasks = {**HELPERS, **tasks}
        conf = env.conf()
        conf["task_track_started"] = True
        # A session with settings of its own (CCL026: a short visibility timeout, on a queue of
        # its own); transport options are merged, so the run's key prefix stays.
        for key, value in (conf_overrides or {}).items():
            if key == "broker_transport_options":
                conf[key] = {**conf.get(key, {}), **value}
            else:
                conf[key] = value
        if conf["task_default_queue"] not in env.queues():
            env.extra_queues.append(conf["task_default_queue"])  # removed with the run's
        self.config = {
            "main": env.queue,
            "conf": conf,
            # The worker process reads its shadows from this, as JSON.
            "tasks": {name: spec.to_json() for name, spec in tasks.items()},
            "control": os.path.join(self.directory, "control.json"),
            "journal": os.path.join(self.directory, "journal.jsonl"),
            "pool": pool,
            "concurrency": concurrency,
            "alt_queue": env.alt_queue,
        }
        self.control = Control(self.config["control"])
        self.control.write({"run": None, "behaviours": {}})
        self.journal = Journal(self.config["journal"])
        self.app = build_app(self.config)
        self.app.set_current()
        self.worker = WorkerProcess(self.config, self.directory, startup_timeout=startup_timeout)
        self.restarts = 0

    def start(self) -> None:
        self.worker.start()

    def close(self) -> None:
        try:
            self.worker.stop()
        finally:
            release_results(self.app)
            try:
                self.app.close()
            except Exception:  # noqa: BLE001 - closing pools of a dead broker
                pass

    def _dead(self) -> Optional[str]:
        return None if self.worker.alive() else self.worker.exit_description()

    def recover(self, why: str) -> str:
        """After a hang or a death: a fresh worker on an empty queue."""
        self.worker.stop(grace=0.5)
        try:
            self.env.purge_queue()
        except InfrastructureError as error:  # the broker is gone: the verifier waits for it
            raise BrokerTrouble(str(error)) from error
        self.restarts += 1
        self.worker.start()
        return f"worker restarted after {why}; the run's queue was purged"

    def calm(self, run: Run, timeout: float = 5.0) -> bool:
        """Lift a run's faults (same run id, no behaviours) and wait until its nodes are done:
        cheaper than a new worker after a task that retries forever. False: still busy."""
        if run.built is None or run.run_id is None:
            return True
        self.control.write({"run": run.run_id, "behaviours": {}})
        ids = [node.id for node in run.built.nodes]
        observation = observe(self.app, ids, timeout, settle=0.2, worker_alive=self._dead)
        if observation.timed_out or observation.worker:
            self.recover("a workflow that did not calm down")
            return False
        return True

    def client_app(self, **conf_overrides):
        """Another client app on the same tasks, e.g. without a result backend (CCL008)."""
        from celery_chain_lint.harness.shadow import build_app

        config = dict(self.config)
        config["conf"] = {**self.config["conf"], **conf_overrides}
        app = build_app(config)
        return app

    def run_many(self, replays: List[ReplayWorkflow], *, timeout: float = 10.0,
                 settle: float = 0.4, behaviours: Optional[Dict[str, Any]] = None,
                 recover: bool = True) -> List[Any]:
        """Replay several workflows at once, with no behaviours (plain shadows) unless given
        (then for all of them): a Run for each, or the Unreplayable exception that stopped its
        rebuilding."""
        if not self.worker.alive():
            self.recover(f"it {self.worker.exit_description()}")
        run_id = uuid.uuid4().hex
        self.control.write({"run": run_id, "behaviours": behaviours or {}})
        start, start_wall = time.monotonic(), time.time()
        runs: List[Any] = []
        for replay in replays:
            try:
                built = build(self.app, replay)
            except Unreplayable as error:
                runs.append(error)
                continue
            except CompositionError as failure:
                runs.append(Run(Built(None, [], lambda: None, "", failure.outside),
                                failure.error, "compose", start_wall=start_wall, run_id=run_id))
                continue
            run = Run(built, start_wall=start_wall, run_id=run_id)
            try:
                built.apply()
            except Exception as exc:  # noqa: BLE001 - the observation
                run.raised, run.raised_at = exc, "apply"
            runs.append(run)
        ids, unstored = [], set()
        for run in runs:
            if isinstance(run, Run) and run.built is not None:
                nodes = run.built.outside if run.raised is not None else \
                    run.built.nodes + run.built.outside
                ids.extend(n.id for n in nodes)
                unstored.update(n.id for n in nodes if n.ignores_result)

        def journal():
            return {e.get("id"): e for e in self.journal.read() if e.get("run") == run_id}

        observation = observe(self.app, ids, timeout, settle=settle, worker_alive=self._dead,
                              start=start, journal=journal, unstored=unstored) if ids else \
            Observation({}, time.monotonic() - start, True, False)
        entries = [e for e in self.journal.read() if e.get("run") == run_id]
        for run in runs:
            if isinstance(run, Run):
                mine = {n.id for n in (run.built.nodes + run.built.outside)} if run.built else set()
                run.observation = Observation(
                    {k: v for k, v in observation.states.items() if k in mine},
                    observation.elapsed, observation.settled, observation.timed_out,
                    observation.worker)
                run.elapsed = observation.elapsed
                run.journal = [e for e in entries if e.get("id") in mine]
        if observation.worker:
            self.recover(f"it {observation.worker} during the run")
        elif observation.timed_out and recover:
            self.recover(f"workflows did not finish within {timeout:g}s")
        return runs

    def run(self, replay: ReplayWorkflow, behaviours: Optional[Dict[str, Any]] = None, *,
            timeout: float = 10.0, settle: float = 0.4,
            stop_when: Optional[Callable[[Dict[str, Dict[str, Any]]], bool]] = None,
            until: str = "settled", app=None, prepare: Optional[Callable[[Built], None]] = None,
            recover: bool = True, repair: bool = False, quiet: float = 0.0,
            stand_ins: Optional[Dict[str, Any]] = None, fill_dynamic: bool = False) -> Run:
        app = app or self.app
        notes = []
        if not self.worker.alive():
            notes.append(self.recover(f"it {self.worker.exit_description()}"))
        run_id = uuid.uuid4().hex
        self.control.write({"run": run_id, "behaviours": behaviours or {}})
        start, start_wall = time.monotonic(), time.time()
        try:
            built = build(app, replay, repair=repair, stand_ins=stand_ins,
                          fill_dynamic=fill_dynamic)
        except CompositionError as failure:
            # Composing failed as the source would; tasks it ran on the way (``add.delay()``
            # where a signature belongs) are still watched until they finish.
            built = Built(None, [], lambda: None, "", failure.outside)
            result = Run(built, failure.error, "compose", notes=notes, start_wall=start_wall)
            ids = [node.id for node in failure.outside]
            result.observation = observe(app, ids, timeout, settle=settle,
                                         worker_alive=self._dead, start=start) if ids else \
                Observation({}, time.monotonic() - start, True, False)
            result.elapsed = time.monotonic() - start
            result.journal = [e for e in self.journal.read() if e.get("run") == run_id]
            return result
        if prepare is not None:
            prepare(built)
        start, start_wall = time.monotonic(), time.time()
        result = Run(built, notes=notes, run_id=run_id)
        result.start_wall = start_wall
        if built.untimed:
            result.notes.append("replayed without waiting for " + ", ".join(built.untimed))
        if built.filled:
            result.notes.append(
                "the group at " + ", ".join(built.filled) + " is built dynamically in the "
                "source; replayed with two stand-in members (ccl_verify.member)")
        if built.shaped:
            result.notes.append(
                "the group at " + ", ".join(built.shaped) + " is built by a comprehension in "
                "the source; replayed with two members of each shape it builds")
        if built.repaired:
            result.notes.append(
                "replayed with complete arguments for " + ", ".join(sorted(set(built.repaired)))
                + " (immutable), so that another bad signature of this workflow does not fail "
                "first")
        try:
            built.apply()
        except Exception as exc:  # noqa: BLE001 - the synchronous failure is the observation
            result.raised, result.raised_at = exc, "apply"
        ids = [node.id for node in built.nodes + built.outside]
        if result.raised is not None:
            # Nothing of the workflow was sent; only tasks run outside it may still complete.
            ids = [node.id for node in built.outside]
        unstored = {n.id for n in built.nodes + built.outside if n.ignores_result}

        def journal():
            return {e.get("id"): e for e in self.journal.read() if e.get("run") == run_id}

        if ids:
            result.observation = observe(app, ids, timeout, settle=settle, stop_when=stop_when,
                                         worker_alive=self._dead, start=start, until=until,
                                         journal=journal, unstored=unstored & set(ids))
        else:
            result.observation = Observation({}, time.monotonic() - start, True, False)
        result.elapsed = time.monotonic() - start
        result.journal = [e for e in self.journal.read() if e.get("run") == run_id]
        if quiet and not result.observation.worker:
            # Callbacks may still run after every polled node is done (one per group member):
            # wait until the journal has been still for ``quiet`` seconds.
            deadline, still_since, seen = start + timeout, time.monotonic(), len(result.journal)
            while time.monotonic() < deadline and time.monotonic() - still_since < quiet:
                time.sleep(0.05)
                result.journal = [e for e in self.journal.read() if e.get("run") == run_id]
                if len(result.journal) != seen:
                    seen, still_since = len(result.journal), time.monotonic()
            if result.observation.states:
                result.observation.states = snapshot(app, list(result.observation.states))
        if recover and result.observation.worker:
            result.notes.append(self.recover(f"it {result.observation.worker} during the run"))
        elif recover and result.observation.timed_out:
            result.notes.append(self.recover(f"the workflow did not finish within {timeout:g}s"))
        return result


def release_results(app) -> None:
    """Forget the results Celery tracks for this client and close its result subscriptions.

    The harness polls states instead of waiting on results, so the Redis backend's result
    consumer keeps every sent task in its pending table; at interpreter exit their
    ``AsyncResult.__del__`` would try to unsubscribe over a connection that is gone.
    """
    try:
        backend = app.backend
    except Exception:  # noqa: BLE001 - nothing to release
        return
    for mapping in getattr(backend, "_pending_results", ()) or ():
        try:
            for waiters in list(mapping.values()):
                for result in list(getattr(waiters, "values", lambda: [waiters])()):
                    if hasattr(result, "backend"):
                        result.backend = None
            mapping.clear()
        except Exception:  # noqa: BLE001 - best effort
            pass
    consumer = getattr(backend, "result_consumer", None)
    if consumer is not None:
        try:
            consumer.stop()
        except Exception:  # noqa: BLE001 - the broker may be gone
            pass
        if hasattr(consumer, "subscribed_to"):
            consumer.subscribed_to = set()
        if hasattr(consumer, "_pubsub"):
            consumer._pubsub = None
