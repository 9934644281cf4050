"""The runtime harness, without a worker: shadow tasks, replay data, batches, environments, CLI.

The tests that start workers are in test_harness_runtime.py (marked ``runtime``).
"""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("celery")

from celery_chain_lint.harness import confirmers  # noqa: E402
from celery_chain_lint.harness.confirmers import Claim, replay_tasks  # noqa: E402
from celery_chain_lint.harness.environment import Environment, is_connection_error  # noqa: E402
from celery_chain_lint.harness.replayer import (  # noqa: E402
    CompositionError,
    Unreplayable,
    build,
)
from celery_chain_lint.harness.shadow import build_app, parameter_source, task_source  # noqa: E402
from celery_chain_lint.harness.verify import plan_batches  # noqa: E402
from celery_chain_lint.workflow.replay import (  # noqa: E402
    Replay,
    ReplayParam,
    ReplayTask,
    ReplayWorkflow,
)

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "celery_chain_lint"]


def param(name, kind="positional-or-keyword", default=False):
    return {"name": name, "kind": kind, "has_default": default}


def spec(name, params, bind=False, options=None, class_based=False):
    return {"name": name, "display": name.rsplit(".", 1)[-1], "params": params, "bind": bind,
            "options": options or {}, "class_based": class_based}


def workflow(data):
    """A workflow as the harness reads it, from the replay JSON the analyser writes."""
    return ReplayWorkflow.from_json(data)


def sig(task, *args, immutable=False, flagged=False, via="s", **kwargs):
    return {"type": "signature", "task": task, "args": [{"literal": a} for a in args],
            "kwargs": {k: {"literal": v} for k, v in kwargs.items()}, "immutable": immutable,
            "via": via, "flagged": flagged, "options": {}}


@pytest.fixture
def app(tmp_path):
    tasks = {
        "t.add": spec("t.add", [param("x"), param("y")]),
        "t.log": spec("t.log", [param("message")]),
        "t.tag": spec("t.tag", [param("order_id"), param("label", "keyword-only"),
                                param("color", "keyword-only", True)]),
        "t.charge": spec("t.charge", [param("amount"), param("currency", default=True)],
                         bind=True, options={"max_retries": 5, "queue": "payments",
                                             "ignore_result": False}),
        "t.Export": spec("t.Export", [param("period"), param("fmt", default=True)],
                         class_based=True),
    }  # as JSON: the worker process reads its shadows from its config file
    env = Environment(workdir=str(tmp_path))
    application = build_app({"conf": env.conf(), "tasks": tasks,
                             "control": str(tmp_path / "control.json"),
                             "journal": str(tmp_path / "journal.jsonl")})
    yield application
    application.close()


# ---- shadow tasks ----


def test_parameter_source_covers_every_kind():
    params = [param("a", "positional-only"), param("b"), param("c", default=True),
              param("args", "var-positional"), param("d", "keyword-only"),
              param("e", "keyword-only", True), param("kw", "var-keyword")]
    typed = [ReplayParam.from_json(p) for p in params]
    assert parameter_source(typed, []) == \
        "a, /, b, c=_ccl_default, *args, d, e=_ccl_default, **kw"
    assert parameter_source([ReplayParam("x"), ReplayParam("k", "keyword-only")], ["self"]) == \
        "self, x, *, k"
    assert parameter_source(None, []) == "*args, **kwargs"


def test_shadow_has_the_real_signature_name_and_options(app):
    add = app.tasks["t.add"]
    assert list(inspect.signature(add.run).parameters) == ["x", "y"]
    assert add.run.__name__ == "add"  # Celery's TypeError names the function
    tag = app.tasks["t.tag"]
    kinds = {n: p.kind.name for n, p in inspect.signature(tag.run).parameters.items()}
    assert kinds == {"order_id": "POSITIONAL_OR_KEYWORD", "label": "KEYWORD_ONLY",
                     "color": "KEYWORD_ONLY"}
    charge = app.tasks["t.charge"]
    assert charge.max_retries == 5
    assert getattr(charge, "queue", None) is None  # routing is the harness's: its own queue
    assert list(inspect.signature(charge.run).parameters) == ["amount", "currency"]  # bound
    export = app.tasks["t.Export"]
    assert not hasattr(type(export), "__header__")  # class-based: not type-checked
    assert "def run(self, period, fmt=_ccl_default)" in task_source(ReplayTask.from_json(
        spec("t.Export", [param("period"), param("fmt", default=True)], class_based=True)))


def test_typing_check_raises_celerys_type_error(app):
    with pytest.raises(TypeError, match=r"add\(\) missing 1 required positional argument"):
        app.tasks["t.add"].s(1).apply_async()
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        app.tasks["t.tag"].s(1, label="x", colour="red").apply_async()


def test_shadow_body_returns_a_placeholder_and_journals(app, tmp_path):
    assert app.tasks["t.log"]("hello") == "<result of log>"
    entries = app.ccl_journal.read()
    assert entries[-1]["task"] == "t.log" and entries[-1]["args"] == {"message": "'hello'"}


# ---- rebuilding workflows ----


def test_build_assigns_ids_roles_and_keeps_celerys_rewriting(app):
    replay = {"canvas": {"type": "chain", "steps": [
        sig("t.add", 1, 2), {"type": "group", "members": [sig("t.log")], "unrolled": True},
        sig("t.log", "done", flagged=True)]}, "application": None, "callbacks": []}
    built = build(app, workflow(replay))
    roles = [n.role for n in built.nodes]
    assert roles == ["canvas.chain[0]", "canvas.chain[1].group[0]", "canvas.chain[2]"]
    assert [n.flagged for n in built.nodes] == [False, False, True]
    assert len({n.id for n in built.nodes}) == 3
    assert "t.add(1, 2)" in built.text
    # Celery unrolled the one-member group: no chord in what it will run.
    assert "%" not in built.text


def test_group_or_task_is_a_chord_and_dynamic_groups_are_unreplayable(app):
    chord = {"canvas": {"type": "chord", "header": {"type": "group", "members": [
        sig("t.add", 1, 1), sig("t.add", 2, 2)]}, "body": sig("t.log")},
        "application": None, "callbacks": []}
    assert build(app, workflow(chord)).text.startswith("%t.log(")
    dynamic = {"canvas": {"type": "group", "members": None}, "application": None,
               "callbacks": []}
    with pytest.raises(Unreplayable, match="built dynamically"):
        build(app, workflow(dynamic))
    unknown = {"canvas": sig("t.nowhere"), "application": None, "callbacks": []}
    with pytest.raises(Unreplayable, match="not in the task index"):
        build(app, workflow(unknown))


def test_map_starmap_and_chunks_rebuild_their_items_or_are_unreplayable(app):
    def mapped(how, items, size=None):
        return workflow({"canvas": {"type": "map", "task": "t.add", "how": how,
                                    "items": items, "size": size},
                         "application": None, "callbacks": []})

    built = build(app, mapped("starmap", [{"literal": [1, 2]}, {"literal": [3, "<y>"]}]))
    assert [n.task for n in built.nodes] == ["celery.starmap"]
    assert "(1, 2)" in built.text or "[1, 2]" in built.text
    built = build(app, mapped("chunks", [{"literal": [1]}, {"literal": [2]}], size=1))
    assert [n.task for n in built.nodes] == ["celery.starmap", "celery.starmap"]
    assert build(app, mapped("map", [{"placeholder": "page"}])).nodes[0].task == "celery.map"
    # ``task(*item)`` with an item known only by its text: how many arguments is not known.
    with pytest.raises(Unreplayable, match="not a literal list or tuple"):
        build(app, mapped("starmap", [{"placeholder": "pair"}]))
    with pytest.raises(Unreplayable, match="not a literal list or tuple"):
        build(app, mapped("chunks", [{"literal": 1}], size=1))


def test_repair_gives_other_signatures_complete_arguments(app):
    replay = {"canvas": {"type": "chain", "steps": [sig("t.add", 1), sig("t.log", "x",
                                                                          flagged=True)]},
              "application": None, "callbacks": []}
    built = build(app, workflow(replay), repair=True)
    assert built.repaired == ["add"]
    assert "t.add('<x>', '<y>')" in built.text


def test_called_task_where_a_signature_belongs_fails_to_compose(app):
    replay = {"canvas": {"type": "chain", "steps": [
        {"type": "called", "task": "t.log", "how": "call"}, sig("t.log", "x")]},
        "application": None, "callbacks": []}
    with pytest.raises(CompositionError) as failure:
        build(app, workflow(replay))
    assert "unsupported operand" in str(failure.value.error)


# ---- replay data, batches, confirmers ----


def test_replay_tasks_merges_workflows_task_and_lenient_called_tasks():
    replay = {"task": spec("a.fetch", [param("url")]),
              "workflows": [{"canvas": {"type": "chain", "steps": [
                  {"type": "called", "task": "a.elsewhere", "how": "delay"}]},
                  "tasks": {"a.save": spec("a.save", [param("status")])}}]}
    found = replay_tasks(Replay.from_json(replay))
    assert set(found) == {"a.fetch", "a.save", "a.elsewhere"}
    assert found["a.elsewhere"].lenient and found["a.elsewhere"].params is None
    ignoring = replay_tasks(Replay.from_json({"tasks": {"a.h": spec("a.h", [])},
                                              "ignoring": ["a.h"]}))
    assert ignoring["a.h"].options["ignore_result"] is True


def test_conflicting_task_specs_go_to_separate_batches():
    one = {"replay": {"tasks": {"x.t": spec("x.t", [param("a")])}}}
    same = {"replay": {"tasks": {"x.t": spec("x.t", [param("a")]), "x.u": spec("x.u", [])}}}
    other = {"replay": {"tasks": {"x.t": spec("x.t", [param("a"), param("b")])}}}
    lenient = {"replay": {"tasks": {"x.t": {"name": "x.t", "params": None, "lenient": True}}}}
    findings = [one, same, other, lenient, {"code": "CCL999"}]
    batches = plan_batches([Claim.from_json(finding).replay for finding in findings])
    assert [b.members for b in batches] == [[0, 1, 3, 4], [2]]
    assert batches[0].tasks["x.t"].params == (ReplayParam("a"),)


def test_rules_have_confirmers_or_a_stated_reason():
    """CCL001-CCL027 have a confirmer (some of which skip, saying why); a rule added later
    without one is reported skipped with the generic reason (next test)."""
    registered = confirmers.load()
    known = [f"CCL{n:03d}" for n in range(1, 28)]
    assert [code for code in known if code not in registered] == []


def test_a_code_without_confirmer_is_skipped_with_the_reason():
    from celery_chain_lint.harness.verify import Batch, Options, Verifier

    verifier = Verifier(Options())
    try:
        verdict = verifier.confirm(Claim("CCL999", "x.py", 1), Batch(0))
    finally:
        verifier.env.cleanup()
    assert verdict.status == "skipped" and "no runtime confirmation exists for CCL999" \
        in verdict.reason


# ---- environments ----


def test_environment_owns_a_unique_queue_and_redis_prefix(tmp_path):
    first = Environment(broker="redis://:secret@127.0.0.1:6379/11",
                        backend="redis://:secret@127.0.0.1:6379/11")
    second = Environment()
    try:
        conf = first.conf()
        assert conf["task_default_queue"] == first.queue != second.queue
        assert first.queue.startswith("ccl-verify-")
        assert conf["broker_transport_options"]["global_keyprefix"] == first.prefix
        assert conf["result_backend_transport_options"]["global_keyprefix"] == first.prefix
        assert conf["worker_enable_remote_control"] is False
        assert "pickle" not in conf["accept_content"]
        described = json.dumps(first.describe())
        assert "secret" not in described and first.describe()["backend_kind"] == "redis"
        assert second.describe()["broker"].startswith("embedded")
        assert second.conf()["broker_transport"].endswith("fstransport:Transport")
    finally:
        first.cleanup()
        second.cleanup()
    assert not Path(second.workdir).exists()


def test_connection_errors_are_recognised():
    from kombu.exceptions import OperationalError

    assert is_connection_error(OperationalError("refused"))
    assert is_connection_error(ConnectionRefusedError())
    assert not is_connection_error(TypeError("add() missing"))


# ---- the command line ----


def test_verify_help_lists_its_options():
    done = subprocess.run(CLI + ["verify", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0
    for option in ("--broker", "--backend", "--timeout", "--execute", "--format"):
        assert option in done.stdout


def _unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("option", ["--broker", "--backend"])
def test_unreachable_service_is_a_clear_error_within_seconds(option, tmp_path):
    port = _unused_port()
    started = time.monotonic()
    done = subprocess.run(CLI + ["verify", option, f"redis://127.0.0.1:{port}/0",
                                 "fixtures/never_imported"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "error:" in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 25  # check + a 3 s connection timeout, on a loaded machine


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise():
    import io

    from celery_chain_lint.harness.verify import ProgressPrinter

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    finding = {"code": "CCL001", "path": "a.py", "line": 3, "column": 1}
    result = dict(finding, status="confirmed", reason="TypeError: boom", evidence={})
    terminal, out = Terminal(), io.StringIO()
    printer = ProgressPrinter(terminal, "json", out)
    printer(0, 2, finding, None)
    printer(1, 2, finding, result)
    printer.finish()
    assert "verify [" in terminal.getvalue() and "\r" in terminal.getvalue()
    assert out.getvalue() == ""  # JSON goes to stdout once, at the end
    plain, out = io.StringIO(), io.StringIO()
    printer = ProgressPrinter(plain, "json", out)
    printer(0, 2, finding, None)
    printer(1, 2, finding, result)
    assert plain.getvalue() == "verify: 1/2 CCL001 a.py:3: confirmed\n"
    text, out = io.StringIO(), io.StringIO()
    ProgressPrinter(text, "text", out)(1, 2, finding, result)
    assert out.getvalue().startswith("a.py:3:1: CCL001 confirmed: TypeError: boom")


# ---- a worker that dies during a run ----


@pytest.fixture(scope="module")
def fixture_claims():
    """The first finding with replay data of each code on the fixtures, and one CCL008 of
    header tasks ignoring results (the other CCL008 findings replay on a client app)."""
    import os

    from celery_chain_lint.config.settings import Settings
    from celery_chain_lint.engine import check

    old = os.getcwd()
    os.chdir(ROOT / "fixtures")
    try:
        report = check(["."], Settings(use_cache=False, select=["ALL"]))
    finally:
        os.chdir(old)
    claims = {}
    for finding in report.findings:
        claim = Claim.from_json(finding.to_json())
        if claim.replay is None:
            continue
        key = claim.code
        if claim.code == "CCL008" and claim.replay.ignoring:
            key = "CCL008 ignoring"
        claims.setdefault(key, claim)
    return claims


def _judged_with_a_dying_worker(claim, tmp_path, die_at):
    """The confirmer's verdict when the worker dies during its ``die_at``-th run (a session
    that runs nothing: every run ends at once, its worker dead or alive)."""
    from celery_chain_lint.harness.replayer import Observation
    from celery_chain_lint.harness.session import Run
    from celery_chain_lint.harness.verify import Context

    count = [0]

    def run(*args, **kwargs):
        count[0] += 1
        died = "exited (signal 9)" if count[0] == die_at else None
        return Run(None, observation=Observation({}, 0.1, True, False, worker=died))

    env = Environment(workdir=str(tmp_path))
    app = build_app({"conf": env.conf(),
                     "tasks": {n: s.to_json() for n, s in replay_tasks(claim.replay).items()},
                     "control": str(tmp_path / "control.json"),
                     "journal": str(tmp_path / "journal.jsonl")})

    class Session:
        def __init__(self):
            self.app, self.env = app, type("Env", (), {"alt_queue": "alt"})()
            self.run = run

        def run_many(self, workflows, **kwargs):
            return [run() for _ in workflows]

        def client_app(self, **settings):
            return app

        def recover(self, why):
            pass

    class Batch:
        session = Session()

        def session_for(self, verifier):
            return self.session

        def session_with(self, verifier, key, conf):
            return self.session

    class Env:
        broker, queue, workdir = "redis://127.0.0.1:6379/0", "q", str(tmp_path)

        def describe(self):
            return {"backend_kind": "cache"}

    context = Context.__new__(Context)  # its runs are the fake session's
    context.verifier, context.options, context.env = None, None, Env()
    context.timeout, context.hung, context.batch = 5.0, [], Batch()
    context.run = run
    try:
        return confirmers.confirmer_for(claim.code)(claim, context)
    finally:
        app.close()


def test_a_run_the_worker_did_not_finish_skips_the_finding(fixture_claims, tmp_path):
    """Every confirmer judging runs on a worker: the dispatch skips the finding, with the
    confirmer's evidence, when the worker died during a run (confirmers/__init__.py)."""
    confirmers.load()
    died = {}
    for key, claim in sorted(fixture_claims.items()):
        if confirmers.NEEDS.get(claim.code) != "worker":
            continue
        verdict = _judged_with_a_dying_worker(claim, tmp_path / key.replace(" ", "-"), 1)
        if "during the" in verdict.reason:
            assert verdict.status == "skipped", (key, verdict)
            assert verdict.evidence["predicted"] == claim.message, key
            died[key] = verdict.reason
    assert died.pop("CCL003") == "the worker exited (signal 9) during the chain run"
    assert set(died.values()) == {"the worker exited (signal 9) during the run"}
    assert sorted(died) == sorted(
        [f"CCL{n:03d}" for n in (1, 2, 5, 6, 7, 9, 10, 11, 12, 13, 14, 16, 18, 19, 20, 21, 22,
                                 23, 24, 25, 26, 27)] + ["CCL008 ignoring"])
    # Applying a chord from an app without a backend raises, or not, whatever the worker did.
    no_backend = _judged_with_a_dying_worker(fixture_claims["CCL008"], tmp_path / "none", 1)
    assert no_backend.status != "skipped"
    # The second run of CCL003's (as a group) is judged as the first.
    verdict = _judged_with_a_dying_worker(fixture_claims["CCL003"], tmp_path / "group", 2)
    assert (verdict.status, verdict.reason) == (
        "skipped", "the worker exited (signal 9) during the group run")
    assert "group_workflow" in verdict.evidence


def test_set_evidence_does_not_depend_on_the_hash_seed():
    """CCL018's evidence shows a set stand-in: two runs of ``verify`` (other hash seeds) must
    print it alike."""
    code = ("from celery_chain_lint.harness.confirmers.serialization import _shown;"
            "print(_shown({'<b>', '<a>', '<c>'}), _shown(set()), _shown('x'))")
    shown = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONHASHSEED": str(seed)}, check=True).stdout
             for seed in range(1, 6)}
    assert shown == {"{'<a>', '<b>', '<c>'} set() 'x'\n"}
