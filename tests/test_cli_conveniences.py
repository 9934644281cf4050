"""What users of ruff expect from the command line (issue 19): ``rules`` says which fixes are
unsafe, Ctrl-C exits 130, ``--fix`` keeps hard links, owner and group, unreadable directories
are reported, ``verify -o``, ``check --show-fixes`` and ``check --watch``."""
from __future__ import annotations

import errno
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from celery_chain_lint import engine
from celery_chain_lint.fixes import fixer
from celery_chain_lint.load import discovery
from celery_chain_lint.rules import ALL_RULES
from ccl_cli import APP, BAD_LINE, GOOD_LINE, run, write

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"flows.py": APP + BAD_LINE})
    return tmp_path


# --- rules -------------------------------------------------------------------------------

def test_rules_marks_fix_only_where_fix_alone_applies_it():
    lines = {line.split()[0]: line for line in run("rules").stdout.splitlines()}
    assert "[fix] " in lines["CCL001"] and "[fix] " in lines["CCL998"]
    assert "[unsafe fix] " in lines["CCL013"] and "[fix] " not in lines["CCL013"]
    assert "[fix, sometimes unsafe] " in lines["CCL007"]
    assert "fix" not in lines["CCL002"].split("  ")[1]
    listed = {rule["code"]: rule for rule in json.loads(run("rules", "--format", "json").stdout)}
    assert listed["CCL014"]["fix_safety"] == "unsafe" and listed["CCL002"]["fix_safety"] is None


@pytest.mark.parametrize("rule", [r for r in ALL_RULES if r.fixable], ids=lambda r: r.code)
def test_declared_fix_safety_is_what_the_examples_get(tmp_path, rule):
    seen = set()
    for index, source in enumerate(rule.INVALID):
        directory = tmp_path / str(index)
        directory.mkdir()
        (directory / "example.py").write_text(source)
        seen |= {f.fix.applicability for f in engine.check([str(directory)]).findings
                 if f.code == rule.code and f.fix is not None}
    assert seen, f"{rule.code}: no INVALID example shows its fix"
    allowed = {"safe": {"safe"}, "unsafe": {"unsafe"},
               "sometimes unsafe": {"safe", "unsafe"}}[rule.fix_safety]
    assert seen <= allowed, (rule.code, seen)


# --- --fix keeps the inode, owner and group ----------------------------------------------

def test_fix_keeps_a_hard_link(project, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "same_file.py"
    os.link(project / "flows.py", other)
    inode = os.stat(project / "flows.py").st_ino
    assert run("check", "--fix", "flows.py").exit_code == 0
    assert os.stat(project / "flows.py").st_ino == inode
    assert other.read_text() == APP + GOOD_LINE and os.stat(other).st_nlink == 2
    assert sorted(p.name for p in project.iterdir() if p.suffix != "") == ["flows.py"]


def test_fix_keeps_a_group_chown_could_not_give_back(project, monkeypatch):
    """A file of a group this user is not in: a new file could not get it back, so the file
    is rewritten in place."""
    path = project / "flows.py"
    before = os.stat(path)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refuse)
    monkeypatch.setattr(fixer, "_same_owner", lambda temporary, info: False)
    assert run("check", "--fix", "flows.py").exit_code == 0
    after = os.stat(path)
    assert path.read_text() == APP + GOOD_LINE
    assert (after.st_ino, after.st_uid, after.st_gid) == (before.st_ino, before.st_uid,
                                                          before.st_gid)
    assert not list(project.glob(".*ccl-tmp"))


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another group needs root")
def test_fix_keeps_another_group(project):
    path = project / "flows.py"
    os.chown(path, os.getuid(), 4242)
    assert run("check", "--fix", "flows.py").exit_code == 0
    assert os.stat(path).st_gid == 4242 and path.read_text() == APP + GOOD_LINE


def test_in_place_write_checks_the_bytes_under_the_same_descriptor(project):
    path = project / "flows.py"
    os.link(path, project / "twin")
    with pytest.raises(fixer.FileChanged):
        fixer.atomic_write(str(path), b"new", original=b"not what is there")
    assert path.read_text() == APP + BAD_LINE


def test_in_place_write_that_fails_leaves_the_old_text(project, monkeypatch):
    path = project / "flows.py"
    os.link(path, project / "twin")
    monkeypatch.setattr(fixer, "_overwrite", _fail_after_truncating(fixer._overwrite))
    result = run("check", "--fix", "flows.py")
    assert result.exit_code == 1
    assert "flows.py: cannot write the file (No space left on device); not fixed" in result.stderr
    assert path.read_text() == APP + BAD_LINE


def _fail_after_truncating(real):
    calls = []

    def overwrite(descriptor, data):
        calls.append(data)
        if len(calls) == 1:  # the new text: half of it lands, then the disk is full
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, data[: len(data) // 2], 0)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(descriptor, data)

    return overwrite


# --- discovery -----------------------------------------------------------------------------

def test_an_unreadable_directory_is_reported(project, monkeypatch):
    write(project, {"locked/inner.py": APP + BAD_LINE})
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(discovery, "_WARNED", set())
    result = run("check", "--no-cache", ".")
    assert result.exit_code == 1
    assert result.stderr.count("warning: locked: cannot list the directory "
                               "(Permission denied); skipped") == 1
    assert "inner.py" not in result.stdout and "flows.py" in result.stdout


# --- --show-fixes --------------------------------------------------------------------------

def test_show_fixes_lists_the_fixes_available(project):
    write(project, {"flows.py": APP + BAD_LINE + "chain(add.s(1, 1), add.s(2))\n"})
    result = run("check", "--show-fixes", "flows.py")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-3:] == [
        "Fixes available:",
        "  flows.py:14:30: CCL001 Use log_done.si(...)",
        "  flows.py:15:1: CCL014 Apply it with .delay() (unsafe: with --unsafe-fixes)"]
    as_json = run("check", "--show-fixes", "--format", "json", "flows.py").stdout
    assert len(json.loads(as_json)) == 2


def test_show_fixes_with_fix_lists_what_was_fixed(project):
    result = run("check", "--fix", "--show-fixes", "flows.py")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-3:] == [
        "Fixed 1 finding:", "- flows.py:", "    1 \u00d7 CCL001 (result-not-accepted)"]


# --- verify -o -----------------------------------------------------------------------------

def test_verify_writes_its_report_to_a_file(project):
    result = run("verify", "--format", "json", "-o", "report.json", "flows.py")
    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    [finding] = json.loads((project / "report.json").read_text())
    assert finding["code"] == "CCL001" and finding["status"] == "confirmed"


def test_verify_fails_at_once_on_an_output_file_it_cannot_write(project):
    result = run("verify", "-o", "no/such/dir/report.txt", "flows.py")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot write no/such/dir/report.txt:")


# --- --watch and Ctrl-C --------------------------------------------------------------------

class Lines:
    """A process's standard output, read line by line with a deadline."""

    def __init__(self, stream):
        self.queue: "queue.Queue" = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.queue.put(line.rstrip("\n"))

    def until(self, predicate, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if predicate(line):
                return line
        raise AssertionError("not printed in time; printed:\n" + "\n".join(self.seen))


def test_watch_checks_again_on_change_and_ctrl_c_exits_130(project):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    process = subprocess.Popen([sys.executable, "-m", "celery_chain_lint", "check", "--watch",
                                "--no-cache", "flows.py"], cwd=project, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines = Lines(process.stdout)
        lines.until(lambda line: line == "Found 1 finding in 1 file.")
        lines.until(lambda line: line.endswith("Watching for file changes."))
        (project / "flows.py").write_text(APP + GOOD_LINE)
        lines.until(lambda line: line == "All checks passed (1 file).")
        lines.until(lambda line: line.endswith("Watching for file changes."))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert not any("Traceback" in line for line in lines.seen), lines.seen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ctrl_c_exits_130(monkeypatch):
    from celery_chain_lint import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "check", interrupted)
    with pytest.raises(SystemExit) as done:
        cli.main(["check", "--no-cache", str(ROOT / "fixtures" / "shop")])
    assert done.value.code == 130


@pytest.mark.parametrize("files, summary", [
    ({"utils.py": "import os\n"}, "All checks passed (1 file, which does not use Celery)."),
    ({"a.py": "x = 1\n", "b.py": "y = [m.group(1) for m in []]\n"},
     "All checks passed (2 files; none uses Celery)."),
    # Near misses: Celery imported inside a function, or a canvas call on something unknown,
    # may be Celery code the analyser did not model: a plain "passed" then.
    ({"jobs.py": "def run(sigs):\n    from celery import group\n    return group(sigs)()\n"},
     "All checks passed (1 file)."),
    ({"jobs.py": "def run(job):\n    job.delay()\n"}, "All checks passed (1 file)."),
    ({"flows.py": APP + GOOD_LINE}, "All checks passed (1 file)."),
])
@pytest.mark.parametrize("statistics", [False, True])
def test_a_clean_run_says_when_no_file_uses_celery(project, files, summary, statistics):
    write(project, files)
    for _ in ("cold", "cached"):
        result = run("check", *(["--statistics"] if statistics else []), *sorted(files))
        assert result.exit_code == 0, result.stdout + result.stderr
        assert result.stdout.splitlines()[0] == summary
