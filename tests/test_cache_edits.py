"""The cache against the edits pre-commit and editors make between two runs (issue 15): after
each one, a cached run (and the cached run after it) reports exactly what ``--no-cache`` does,
for ``check .`` and for ``check`` of one workflow file (the others are then only context).

Runs are in-process with a parser child forked as the command line forks one (there it is
forked only while libcst is not imported yet): a changed file is parsed in the child, exactly
the pre-commit path. One test runs the command line itself.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Dict

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from celery_chain_lint import engine
from celery_chain_lint.config.settings import Settings
from celery_chain_lint.load import pipeline

FLOWS = "proj/flows/pipeline.py"
MATH = "proj/tasks/math.py"
NOTIFY = "proj/tasks/notify.py"

# An app module, tasks in one package, workflows in another, a helper that is only context.
PROJECT: Dict[str, str] = {
    "pyproject.toml": "",
    "proj/__init__.py": "",
    "proj/celery_app.py": """
        from celery import Celery

        app = Celery("proj", broker="memory://", backend="redis://")
    """,
    "proj/tasks/__init__.py": "",
    MATH: """
        from proj.celery_app import app


        @app.task
        def add(x, y):
            return x + y


        @app.task
        def log(message):
            return message
    """,
    NOTIFY: """
        from proj.celery_app import app


        @app.task
        def send(to, body):
            return to
    """,
    "proj/flows/__init__.py": "",
    FLOWS: """
        from celery import chain, group
        from proj.tasks.math import add, log
        from proj.tasks.notify import send
        from proj.util import recipients


        def flow():
            return chain(add.s(1, 2), log.s("done"))


        def mail():
            return group(send.s(to) for to in recipients()) | send.s("x", "y")
    """,
    "proj/util.py": "def recipients():\n    return ['a', 'b']\n",
}


def write(root: Path, files: Dict[str, str]) -> None:
    """Write ``files`` aged past the cache's racy window (an mtime older than two seconds),
    as files are when a run happens long after they were saved."""
    past = time.time() - 100
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        os.utime(path, (past, past))


@pytest.fixture(autouse=True)
def parser_child(monkeypatch):
    """Fork the parser child as the command line does, although libcst is imported here."""
    def fork(analysis):
        if analysis.cache is None or analysis.cache.is_empty():
            return None
        return pipeline.ParserChild()
    monkeypatch.setattr(pipeline, "fork_parser_child", fork)


def findings(root: Path, path: str, cache: bool):
    old = os.getcwd()
    os.chdir(root)
    try:
        report = engine.check([path], Settings(use_cache=cache, cache_dir=str(root / ".c")))
    finally:
        os.chdir(old)
    return [(f.path, f.span.line, f.span.column, f.code) for f in report.findings]


def assert_cache_agrees(root: Path, path: str) -> list:
    expected = findings(root, path, cache=False)
    assert findings(root, path, cache=True) == expected, f"check {path}, first cached run"
    assert findings(root, path, cache=True) == expected, f"check {path}, second cached run"
    return expected


# ---- the edits ----


def _rewrite(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text, (relative, old)
    path.write_text(text.replace(old, new))


def append(root: Path) -> None:
    with open(root / FLOWS, "a") as handle:
        handle.write("\n\ndef again():\n    return chain(add.s(1, 2), add.s(1, 2))\n")


# ``log`` then takes three arguments: the same number of bytes.
SAME_SIZE = ("def log(message):\n    return message", "def log(a, b, c):\n    return (a,b,c)")


def same_size_old_mtime(root: Path) -> None:
    """A task's signature changed in place, the file keeping its size, inode and mtime (set
    back, as ``cp -p``, ``rsync -a``, ``touch -r`` and archive tools do)."""
    path = root / MATH
    before = path.stat()
    _rewrite(root, MATH, *SAME_SIZE)
    assert path.stat().st_size == before.st_size and path.stat().st_ino == before.st_ino
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def replaced_old_mtime(root: Path) -> None:
    """An editor's atomic save (a new file renamed over the old one) keeping size and mtime."""
    path = root / MATH
    before = path.stat()
    temporary = path.with_name(".math.py.tmp")
    temporary.write_text(path.read_text().replace(*SAME_SIZE))
    assert temporary.stat().st_size == before.st_size
    os.utime(temporary, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(temporary, path)


def signature_now(root: Path) -> None:
    _rewrite(root, MATH, "def log(message):", "def log(message, level):")


def rename(root: Path) -> None:
    (root / MATH).rename(root / "proj/tasks/arith.py")


def rename_and_follow(root: Path) -> None:
    rename(root)
    _rewrite(root, FLOWS, "proj.tasks.math", "proj.tasks.arith")


def delete(root: Path) -> None:
    (root / NOTIFY).unlink()


def move_between_packages(root: Path) -> None:
    (root / MATH).rename(root / "proj/flows/math.py")
    _rewrite(root, FLOWS, "proj.tasks.math", "proj.flows.math")


def new_module_imported(root: Path) -> None:
    write(root, {"proj/tasks/extra.py": """
        from proj.celery_app import app


        @app.task
        def more(x, y):
            return x
    """})
    with open(root / FLOWS, "a") as handle:
        handle.write("\n\nfrom proj.tasks.extra import more\n\n\ndef extra():\n"
                     "    return chain(add.s(1, 2), more.s(1, 2))\n")


def context_made_a_task(root: Path) -> None:
    """The helper, only context of the workflows, becomes a task module."""
    (root / "proj/util.py").write_text(
        "from proj.celery_app import app\n\n\n@app.task\ndef recipients(x):\n    return []\n")


def package_removed(root: Path) -> None:
    """``tasks`` stops being a package: its modules' names change, not their bytes."""
    (root / "proj/tasks/__init__.py").unlink()


EDITS: Dict[str, Callable[[Path], None]] = {edit.__name__: edit for edit in (
    append, same_size_old_mtime, replaced_old_mtime, signature_now, rename, rename_and_follow,
    delete, move_between_packages, new_module_imported, context_made_a_task, package_removed)}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_cached_run_after_an_edit_reports_what_no_cache_does(tmp_path, name):
    write(tmp_path, PROJECT)
    before = {path: assert_cache_agrees(tmp_path, path) for path in (".", FLOWS)}
    assert [code for *_, code in before["."]] == ["CCL001", "CCL001"]
    assert before["."] == before[FLOWS]
    EDITS[name](tmp_path)
    after = {path: assert_cache_agrees(tmp_path, path) for path in (".", FLOWS)}
    assert after["."] == after[FLOWS]  # the workflows are the only file with findings
    if name not in ("delete", "package_removed", "rename_and_follow", "move_between_packages",
                    "context_made_a_task"):
        assert after["."] != before["."], "the edit changes the findings"


def test_the_command_line_sees_a_same_size_edit_with_its_mtime_set_back(tmp_path):
    """The shortest reproduction, on the command line: separate processes, as pre-commit runs
    them; the file keeps size, inode and mtime."""
    write(tmp_path, PROJECT)

    def cli(*arguments):
        result = subprocess.run([sys.executable, "-m", "celery_chain_lint", "check", "--format",
                                 "json", *arguments], cwd=tmp_path, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode in (0, 1), result.stderr
        return [(f["line"], f["code"]) for f in json.loads(result.stdout)]

    cli(FLOWS)  # cold
    warm = cli(FLOWS)
    assert warm == [(9, "CCL001"), (13, "CCL001")]
    same_size_old_mtime(tmp_path)
    expected = cli("--no-cache", FLOWS)
    assert expected != warm
    assert cli(FLOWS) == expected
    assert cli(FLOWS) == expected


# ---- any sequence of edits ----

# Edits that compose: each applies to whatever the tree holds at the time.
def _any_text_edit(root: Path, data) -> None:
    files = sorted(p for p in root.rglob("*.py") if ".c" not in p.relative_to(root).parts)
    if not files:
        return
    path = data.draw(st.sampled_from(files))
    lines = path.read_text().splitlines(True) or ["\n"]
    kind = data.draw(st.sampled_from(["delete", "duplicate", "swap", "borrow"]))
    before = path.stat()
    i = data.draw(st.integers(0, len(lines) - 1))
    j = data.draw(st.integers(0, len(lines) - 1))
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[j])
    elif kind == "swap":  # same size
        lines[i], lines[j] = lines[j], lines[i]
    else:
        other = data.draw(st.sampled_from(files)).read_text().splitlines(True) or ["\n"]
        lines.insert(i, other[min(j, len(other) - 1)])
    path.write_text("".join(lines))
    if data.draw(st.booleans()):
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _any_file_edit(root: Path, data) -> None:
    files = sorted(p for p in root.rglob("*.py") if ".c" not in p.relative_to(root).parts)
    if not files:
        return
    path = data.draw(st.sampled_from(files))
    directories = sorted({p.parent for p in files})
    kind = data.draw(st.sampled_from(["rename", "move", "delete", "copy"]))
    if kind == "delete":
        path.unlink()
        return
    target = data.draw(st.sampled_from(directories)) / (
        data.draw(st.sampled_from(["", "x_", "y_"])) + path.name)
    if target.exists():
        return
    if kind == "copy":
        shutil.copy2(path, target)
    else:
        path.rename(target)


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_sequence_of_edits_keeps_the_cache_exact(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("edits")
    write(root, PROJECT)
    assert_cache_agrees(root, ".")
    for _ in range(data.draw(st.integers(1, 4))):
        edit = data.draw(st.sampled_from([_any_text_edit, _any_file_edit]))
        edit(root, data)
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                       if ".c" not in p.relative_to(root).parts)
        path = data.draw(st.sampled_from(["."] + files))
        assert_cache_agrees(root, path)


def test_a_file_written_during_a_run_leaves_nothing_stale(tmp_path):
    """A file read again during the run (one that does not import Celery is read again only
    if a name resolves into it) that no longer holds the bytes it was hashed as: its manifest
    entry is forgotten and the run's findings are not stored under a key of the old hash."""
    from celery_chain_lint.load.discovery import discover

    write(tmp_path, PROJECT)
    helper = tmp_path / "proj/util.py"
    analysis = pipeline.Analysis(Settings(cache_dir=str(tmp_path / ".c")))
    analysis.prepare(discover([str(tmp_path / "proj")]))
    key = analysis.results_key("settings")
    f = next(f for f in analysis.files if f.abspath == str(helper))
    assert f.data is None and str(helper) in analysis.cache.manifest  # let go after the scan
    helper.write_text(helper.read_text() + "# written during the run\n")
    assert analysis._data(f) == helper.read_bytes()
    assert analysis.changed_during_run and str(helper) not in analysis.cache.manifest
    analysis.store_results(key, [])
    assert analysis.cache.get(key) is None
    assert analysis.results_key("settings") != key
