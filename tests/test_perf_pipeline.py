"""The file pipeline: partial runs index the whole project, parallel extraction equals serial,
and ``check`` starts without importing Celery or the extractor when the cache is warm.
(No timed assertions: benchmarks/run.py measures time.)"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from celery_chain_lint import engine
from celery_chain_lint.load import reading
from celery_chain_lint.load import pipeline
from celery_chain_lint.load.pipeline import project_root
from celery_chain_lint.config.settings import Settings

from projects import DJANGO_SETTINGS_READ_BY_NAME, write

ROOT = Path(__file__).resolve().parents[1]


def snapshot(tmp_path: Path) -> Path:
    """fixtures/ copied into a project of its own (other work may change the tree meanwhile)."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "fixtures", project / "fixtures")
    (project / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    return project


def check(cwd: Path, paths, **options):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        report = engine.check(paths, Settings(use_cache=False), **options)
    finally:
        os.chdir(old)
    return [f.to_json() for f in report.findings]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The findings of ``check fixtures`` (no cache, default jobs) on a snapshot of its own:
    what the partial runs are compared with (the paths are relative: the same on every
    snapshot)."""
    return check(snapshot(tmp_path_factory.mktemp("whole")), ["fixtures"])


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The same with ``jobs=1``: what the parallel runs are compared with."""
    return check(snapshot(tmp_path_factory.mktemp("serial")), ["fixtures"], jobs=1)


def test_one_file_is_checked_against_the_whole_project(tmp_path, whole):
    project = snapshot(tmp_path)
    target = os.path.join("fixtures", "shop", "pipelines.py")
    partial = check(project, [target])
    assert partial, "the tasks live in other modules: they must be indexed"
    assert partial == [f for f in whole if f["path"] == target]


def test_pre_commit_style_run_on_changed_files(tmp_path, whole):
    project = snapshot(tmp_path)
    changed = [os.path.join("fixtures", "shop", "pipelines.py"),
               os.path.join("fixtures", "shop", "checkout.py")]
    partial = check(project, changed)
    assert partial == [f for f in whole if f["path"] in changed]
    assert {f["path"] for f in partial} == set(changed)


def test_cli_partial_run(tmp_path):
    project = snapshot(tmp_path)
    result = subprocess.run([sys.executable, "-m", "celery_chain_lint", "check", "--format",
                             "json", "--no-cache", "fixtures/shop/pipelines.py"],
                            cwd=project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)
    assert findings and {f["path"] for f in findings} == {"fixtures/shop/pipelines.py"}


def test_project_root(tmp_path):
    (tmp_path / "repo" / "src" / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "repo" / "setup.cfg").write_text("")
    for directory in ("src/pkg", "src/pkg/sub"):
        (tmp_path / "repo" / directory / "__init__.py").write_text("")
    module = tmp_path / "repo" / "src" / "pkg" / "sub" / "mod.py"
    module.write_text("")
    assert project_root(str(module)) == (str(tmp_path / "repo"), False)
    # No marker: where Python imports it from, the parent of its top package, read shallow.
    (tmp_path / "loose" / "top" / "inner").mkdir(parents=True)
    (tmp_path / "loose" / "top" / "__init__.py").write_text("")
    (tmp_path / "loose" / "top" / "inner" / "__init__.py").write_text("")
    (tmp_path / "loose" / "top" / "inner" / "m.py").write_text("")
    if project_root(str(tmp_path))[1]:  # no marker above the temporary directory
        assert project_root(str(tmp_path / "loose" / "top" / "inner" / "m.py")) == \
            (str(tmp_path / "loose"), True)
        (tmp_path / "script.py").write_text("")
        assert project_root(str(tmp_path / "script.py")) == (str(tmp_path), True)


def test_parallel_extraction_equals_serial(tmp_path, monkeypatch, serial):
    project = snapshot(tmp_path)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_FILES", 2)
    old = os.getcwd()
    os.chdir(project)
    try:
        report = engine.check(["fixtures"], Settings(use_cache=False), jobs=2)
    finally:
        os.chdir(old)
    assert report.stats["workers"] == 2
    assert [f.to_json() for f in report.findings] == serial


def test_entries_pickled_by_workers_serve_the_next_run(tmp_path, monkeypatch, serial):
    """Workers send each file's cache entry pickled, and the main process stores those bytes
    as they came: the next run must load them (through the cache's restricted unpickler)
    and find what a serial run finds."""
    project = snapshot(tmp_path)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_FILES", 2)
    settings = Settings(cache_dir=str(tmp_path / "cache"))
    old = os.getcwd()
    os.chdir(project)
    try:
        first = engine.check(["fixtures"], settings, jobs=2)
        changed = sorted(project.glob("fixtures/**/*.py"))[0]
        changed.write_text(changed.read_text() + "\n# edited\n")  # no finding moves
        second = engine.check(["fixtures"], settings, jobs=2)
    finally:
        os.chdir(old)
    assert first.stats["workers"] == 2 and first.stats["parsed"] > 2
    assert second.stats["cached"] >= first.stats["parsed"] - 1
    assert [f.to_json() for f in first.findings] == serial
    assert [f.to_json() for f in second.findings] == serial


def test_warm_check_imports_neither_celery_nor_the_extractor_nor_the_rules(tmp_path):
    project = snapshot(tmp_path)
    code = ("import sys, celery_chain_lint.cli as c\n"
            "sys.argv = ['celery-chain-lint', 'check', 'fixtures/shop']\n"
            "try:\n    c.main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('celery', 'kombu', 'celery_chain_lint.facts.extract',"
            " 'celery_chain_lint.index.project',"
            " 'celery_chain_lint.rules.ccl001_result_not_accepted') if m in sys.modules))")
    first = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                           text=True, timeout=600)
    assert first.stdout.strip().splitlines()[-1] == \
        "['celery_chain_lint.facts.extract', 'celery_chain_lint.index.project'," \
        " 'celery_chain_lint.rules.ccl001_result_not_accepted']"  # cold: parses, runs the rules
    second = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                            text=True, timeout=600)
    assert second.stdout.strip().splitlines()[-1] == "[]", second.stderr


def _cli_json(project: Path, *arguments):
    result = subprocess.run([sys.executable, "-m", "celery_chain_lint", "check", "--format",
                             "json", *arguments], cwd=project, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_a_changed_file_parsed_in_the_background_gives_a_cold_runs_findings(tmp_path):
    """With a warm cache, a few changed files are parsed by a forked child (the parent, which
    has not imported the extractor, loads the cached facts meanwhile); the CLI then leaves through
    ``os._exit``. Findings, output and the cache must be exactly a cold run's."""
    project = snapshot(tmp_path)
    _cli_json(project, "fixtures")  # warms the cache
    changed = project / "fixtures" / "shop" / "pipelines.py"
    changed.write_text(changed.read_text() + "\n\ndef more():\n    return add.s(1, 2, 3)\n")
    after_change = _cli_json(project, "fixtures")
    cold = _cli_json(project, "--no-cache", "fixtures")
    assert after_change == cold
    assert any(f["path"].endswith("pipelines.py") and f["code"] == "CCL002"
               and f["line"] == len(changed.read_text().splitlines()) for f in cold)
    assert _cli_json(project, "fixtures") == cold  # the cache the fast exit left is sound
    stats = subprocess.run(
        [sys.executable, "-c", "import sys, json, celery_chain_lint.engine as e\n"
         "r = e.check(['fixtures'])\nprint(json.dumps(r.stats))"],
        cwd=project, capture_output=True, text=True, timeout=600)
    assert json.loads(stats.stdout)["results_cached"] == 1


def _shop_sources():
    from celery_chain_lint.load.discovery import discover as find

    return [dataclasses.replace(s, content=Path(s.path).read_bytes())
            for s in find([str(ROOT / "fixtures" / "shop")])][:3]


def test_parser_child_gives_the_in_process_results_and_leaves_nothing_behind():
    sources = _shop_sources()
    child = pipeline.ParserChild()
    child.parse(sources)
    results = child.results()
    expected = [reading.analyse_file(source) for source in sources]
    assert [repr(r) for r in results] == [repr(e) for e in expected]
    assert child.pid == 0  # waited for
    unused = pipeline.ParserChild()
    pid = unused.pid
    unused.close()  # never given work: killed, and waited for
    assert unused.pid == 0
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


def test_a_parser_child_that_dies_leaves_the_work_to_the_parent():
    import signal

    child = pipeline.ParserChild()
    os.kill(child.pid, signal.SIGKILL)
    child.parse(_shop_sources())
    assert child.results() == []  # the caller then parses the files itself
    assert child.pid == 0


def test_the_benchmark_runs_on_a_small_tree(tmp_path, capsys):
    """benchmarks/run.py is run by hand: this keeps it runnable (it once imported a name the
    pre-filter no longer has). Times are printed, not asserted."""
    import importlib.util
    import json

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("ccl_benchmark", root / "benchmarks" / "run.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    output = tmp_path / "results.json"
    assert benchmark.main([str(root / "fixtures" / "shop"), "--skip-competitors",
                           "--skip-linearity", "--skip-dense", "--json", str(output)]) == 0
    tree = json.loads(output.read_text())["tree"]
    assert tree["files"] > 5 and tree["changed_file"].endswith(".py")
    assert all(tree[key] > 0 for key in ("cold_s", "warm_s", "one_file_changed_s",
                                         "pre_commit_s", "peak_mb"))
    assert "| peak memory" in capsys.readouterr().out


def test_a_run_after_a_change_reads_left_out_values_from_the_cache(tmp_path):
    """A module read for its definitions leaves its values until a name is resolved (here the
    Django settings CCL008 reads); once read they are cached, so a run after an unrelated
    change resolves them without importing the extractor in the main process."""
    write(tmp_path, {**DJANGO_SETTINGS_READ_BY_NAME,
                     "site/other.py": "from celery import shared_task\n"})
    code = ("import sys, json, celery_chain_lint.engine as e\n"
            "r = e.check(['site'])\n"
            "print(json.dumps([[f.code for f in r.findings], r.stats,"
            " 'celery_chain_lint.facts.extract' in sys.modules]))")

    def run():
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                                text=True, timeout=600)
        return json.loads(result.stdout.strip().splitlines()[-1])

    cold_codes, cold_stats, _ = run()
    assert cold_codes == ["CCL008"] and cold_stats["values"] == 1
    (tmp_path / "site" / "other.py").write_text("from celery import shared_task\n# edited\n")
    codes, stats, extractor_imported = run()
    assert codes == cold_codes and stats.get("background") == 1
    assert "values" not in stats and not extractor_imported  # read from the cache


def test_bodies_for_a_rule_are_read_only_when_it_is_selected(tmp_path, monkeypatch):
    """A body calling a task method on a plain helper is read for CCL015 (not-a-task), and
    left unread when no selected rule reads such calls."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "helpers.py").write_text("def notify(x):\n    return x\n")
    (tmp_path / "app" / "views.py").write_text(
        "from app import helpers\n\n\ndef view():\n    helpers.notify.delay(1)\n")
    monkeypatch.chdir(tmp_path)
    selected = engine.check(["."], Settings(use_cache=False, select=["CCL015"]), jobs=1)
    assert [(f.code, f.span.line) for f in selected.findings] == [("CCL015", 5)]
    assert selected.stats.get("root_bodies", 0) == 1
    others = engine.check(["."], Settings(use_cache=False, select=["CCL001", "CCL002"]), jobs=1)
    assert others.findings == [] and others.stats.get("root_bodies", 0) == 0
