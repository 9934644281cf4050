"""``--fix`` never loses data (issue 7): killed in the middle of writing many files, every file is
exactly as before or exactly as fixed; a file changed between analysis and write is skipped; a
second run changes nothing; mode, encoding, BOM and line endings are kept byte for byte."""
from __future__ import annotations

import codecs
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hostile_helpers import BUG, ROOT, TASKS, run_cli, write_files

BEFORE = 'log_done.s("done")'
AFTER = 'log_done.si("done")'
HEADER = "from celery import chain\nfrom tasks import add, log_done\n"


def body(index: int) -> str:
    return f"{HEADER}\n\ndef flow{index}():\n    {BUG}\n"


# name -> bytes of a file with one fixable CCL001 in some odd but valid form.
VARIANTS = {
    "plain": body(0).encode(),
    "crlf": body(1).replace("\n", "\r\n").encode(),
    "cr_only": body(2).replace("\n", "\r").encode(),
    "bom": codecs.BOM_UTF8 + ("# é\n" + body(3)).encode(),
    "latin1": ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + body(4)).encode("latin-1"),
    "no_final_newline": body(5).rstrip("\n").encode(),
    "form_feed_and_separators": ("# page\x0cbreak\nNOTE = 'a\u2028b\x85c'\n" + body(6)).encode(),
    "tabs": body(7).replace("    ", "\t").encode(),
    "mixed_endings": (HEADER.replace("\n", "\r\n") + "\n\r\n" + body(8)[len(HEADER):]).encode(),
}


def fixed_bytes(data: bytes) -> bytes:
    """What --fix must make of ``data``: the one ``.s`` becomes ``.si``, nothing else moves."""
    assert data.count(BEFORE.encode()) == 1
    return data.replace(BEFORE.encode(), AFTER.encode())


@pytest.fixture
def project(tmp_path):
    write_files(tmp_path, {"pyproject.toml": "", "tasks.py": TASKS})
    return tmp_path


def test_fix_keeps_every_byte_but_the_fix(project):
    for name, data in VARIANTS.items():
        (project / f"{name}.py").write_bytes(data)
    os.chmod(project / "plain.py", 0o751)
    os.chmod(project / "crlf.py", 0o600)
    os.symlink("plain.py", project / "link.py")
    result = run_cli("check", "--no-cache", "--fix", ".", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, data in VARIANTS.items():
        assert (project / f"{name}.py").read_bytes() == fixed_bytes(data), name
    assert os.stat(project / "plain.py").st_mode & 0o7777 == 0o751
    assert os.stat(project / "crlf.py").st_mode & 0o7777 == 0o600
    assert os.path.islink(project / "link.py")
    assert not list(project.glob(".*ccl-tmp"))
    # Fixing twice changes nothing the second time.
    snapshot = {p: p.read_bytes() for p in project.glob("*.py")}
    again = run_cli("check", "--no-cache", "--fix", ".", cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {p: p.read_bytes() for p in project.glob("*.py")} == snapshot


# A wrapper around the CLI that reports each file it writes, so that the test can kill it in the
# middle of a run; with KILL_IN_REPLACE=n it kills itself inside the n-th atomic write, after the
# temporary file is written and before it replaces the original.
WRAPPER = textwrap.dedent("""\
    import os, signal, sys, time
    from celery_chain_lint.fixes import fixer
    from celery_chain_lint.cli import main

    kill_in_replace = int(os.environ.get("KILL_IN_REPLACE", "0"))
    writes = [0]
    real_write, real_replace = fixer.atomic_write, os.replace

    def replace(source, target):
        if kill_in_replace and writes[0] + 1 == kill_in_replace:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(source, target)

    def atomic_write(path, data, original=None):
        real_write(path, data, original)
        writes[0] += 1
        print("WROTE", path, flush=True)
        time.sleep(0.005)

    fixer.atomic_write = atomic_write
    os.replace = replace
    main(["check", "--no-cache", "--fix", "--quiet", "."])
    """)


def _many(project: Path, count: int) -> dict:
    originals = {}
    names = list(VARIANTS)
    for index in range(count):
        data = VARIANTS[names[index % len(names)]]
        data = data.replace(b"def flow", b"def flow_%d_" % index)
        path = project / f"m{index:03d}.py"
        path.write_bytes(data)
        originals[path] = data
    return originals


def _assert_before_or_after(originals: dict) -> tuple:
    before = after = 0
    for path, data in originals.items():
        now = path.read_bytes()
        if now == data:
            before += 1
        else:
            assert now == fixed_bytes(data), f"{path.name} is neither as before nor as fixed"
            after += 1
    return before, after


def _leftovers(project: Path):
    return [p for p in project.iterdir() if p.name.endswith(".ccl-tmp")]


def test_sigkill_while_writing_many_files(project):
    originals = _many(project, 120)
    process = subprocess.Popen([sys.executable, "-c", WRAPPER], cwd=project,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    written = 0
    try:
        for line in process.stdout:
            if line.startswith(b"WROTE"):
                written += 1
                if written == 40:
                    process.send_signal(signal.SIGKILL)
                    break
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    before, after = _assert_before_or_after(originals)
    assert after >= 40 and before >= 1, (before, after)
    assert _leftovers(project) == []
    # The next run finishes the job.
    result = run_cli("check", "--no-cache", "--fix", ".", cwd=project, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _assert_before_or_after(originals) == (0, len(originals))


def test_sigkill_inside_an_atomic_write(project):
    """Killed after the temporary file is written, before it replaces the original: the
    original is intact, and the temporary file is not a .py that a later run would analyse."""
    originals = _many(project, 30)
    result = subprocess.run([sys.executable, "-c", WRAPPER], cwd=project, capture_output=True,
                            timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT),
                                              "KILL_IN_REPLACE": "11"})
    assert result.returncode == -signal.SIGKILL
    before, after = _assert_before_or_after(originals)
    assert after == 10 and before == 20
    leftovers = _leftovers(project)
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".")
    again = run_cli("check", "--no-cache", "--fix", ".", cwd=project, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _assert_before_or_after(originals) == (0, len(originals))


@pytest.mark.parametrize("delay", [0.3, 0.9, 1.6])
def test_sigkill_at_random_moments(project, delay):
    originals = _many(project, 60)
    process = subprocess.Popen([sys.executable, "-m", "celery_chain_lint", "check", "--no-cache",
                                "--fix", "."], cwd=project, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    _assert_before_or_after(originals)
    for leftover in _leftovers(project):
        leftover.unlink()


def test_a_file_changed_between_analysis_and_fix_is_skipped(project, monkeypatch):
    """Even rewritten to the same size with its mtime put back, the file is not overwritten;
    the others are fixed, and the skip is reported."""
    from celery_chain_lint import engine
    from celery_chain_lint.fixes import fixer
    from celery_chain_lint.config.settings import Settings

    originals = _many(project, 6)
    victim = project / "m002.py"
    edited = originals[victim].replace(b"return", b"RETURN") if b"return" in originals[victim] \
        else originals[victim].replace(b"def ", b"def_")
    assert len(edited) == len(originals[victim])
    real_check = engine.check
    calls = []

    def check_then_edit(*args, **kwargs):
        report = real_check(*args, **kwargs)
        if not calls:
            info = os.stat(victim)
            victim.write_bytes(edited)
            os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))
        calls.append(1)
        return report

    monkeypatch.setattr(engine, "check", check_then_edit)
    monkeypatch.chdir(project)
    outcome = fixer.fix(["."], Settings(use_cache=False))
    assert victim.read_bytes() == edited
    assert any("m002.py" in problem and "not fixed" in problem for problem in outcome.problems)
    for path, data in originals.items():
        if path != victim:
            assert path.read_bytes() == fixed_bytes(data), path.name


def test_files_deleted_replaced_or_made_read_only_before_the_write(project, monkeypatch):
    from celery_chain_lint import engine
    from celery_chain_lint.fixes import fixer
    from celery_chain_lint.config.settings import Settings

    originals = _many(project, 6)
    deleted, replaced, read_only = project / "m001.py", project / "m002.py", project / "m003.py"
    real_check = engine.check
    calls = []

    def check_then_interfere(*args, **kwargs):
        report = real_check(*args, **kwargs)
        if not calls:
            deleted.unlink()
            replaced.unlink()
            os.symlink("m000.py", replaced)
            os.chmod(read_only, 0o444)
        calls.append(1)
        return report

    monkeypatch.setattr(engine, "check", check_then_interfere)
    monkeypatch.chdir(project)
    outcome = fixer.fix(["."], Settings(use_cache=False))
    assert not deleted.exists()
    assert os.path.islink(replaced)
    assert read_only.read_bytes() == originals[read_only]
    # m002's edits were computed on m002's old text: never applied to m000's through the link.
    target = project / "m000.py"
    assert target.read_bytes() in (originals[target], fixed_bytes(originals[target]))
    for names in (["m001.py"], ["m002.py", "m000.py"], ["m003.py"]):
        assert any(name in problem for problem in outcome.problems for name in names), \
            (names, outcome.problems)
    for path in (project / "m004.py", project / "m005.py"):
        assert path.read_bytes() == fixed_bytes(originals[path])


def test_add_noqa_writes_on_the_right_line_and_nothing_else(project):
    """``--add-noqa`` counts lines as the findings do, whatever the line endings, form feeds or
    Unicode separators in between, and keeps every other byte."""
    for name, data in VARIANTS.items():
        (project / f"{name}.py").write_bytes(data)
    result = run_cli("check", "--no-cache", "--add-noqa", ".", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, data in VARIANTS.items():
        start = data.index(BUG.encode())
        ends = [i for i in (data.find(b"\r", start), data.find(b"\n", start)) if i != -1]
        end = min(ends) if ends else len(data)
        expected = data[:end] + b"  # noqa: CCL001" + data[end:]
        assert (project / f"{name}.py").read_bytes() == expected, name
    clean = run_cli("check", "--no-cache", ".", cwd=project)
    assert clean.returncode == 0, clean.stdout
