"""--fix, --unsafe-fixes, --diff: idempotent, re-parsed, atomic, keeping mode, owner,
encoding, BOM and line endings; overlapping edits converge over rounds; files changed on
disk are skipped."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from celery_chain_lint import engine
from celery_chain_lint.fixes import fixer
from celery_chain_lint.facts.ir import Span
from celery_chain_lint.findings import Edit, Fix
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.config.settings import Settings
from ccl_cli import APP, BAD_LINE, GOOD_LINE, run, write

REMAINS = "add.s(1).delay()\n"  # CCL002: no fix


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def names(directory):
    return sorted(p.name for p in directory.iterdir() if p.name != ".celery_chain_lint_cache")


def test_fix_applies_and_reports_what_remains(project):
    write(project, {"flows.py": APP + BAD_LINE + BAD_LINE.replace("completed", "again") + REMAINS})
    result = run("check", "--fix", "flows.py")
    assert result.exit_code == 1
    assert (project / "flows.py").read_text() == (
        APP + GOOD_LINE + GOOD_LINE.replace("completed", "again") + REMAINS)
    assert result.stdout.splitlines() == [
        "flows.py:16:1: CCL002 add(x, y) will be called as add(1): missing required argument 'y'",
        "Found 3 findings in 1 file (2 fixed, 1 remaining)."]


def test_fix_everything_exits_zero_and_is_idempotent(project):
    write(project, {"flows.py": APP + BAD_LINE})
    first = run("check", "--fix", "flows.py")
    assert first.exit_code == 0 and "Fixed 1 finding" in first.stdout
    fixed = (project / "flows.py").read_bytes()
    second = run("check", "--fix", "flows.py")
    assert second.exit_code == 0 and second.stdout == "All checks passed (1 file).\n"
    assert (project / "flows.py").read_bytes() == fixed
    assert run("check", "--fix", "--exit-non-zero-on-fix", "flows.py").exit_code == 0
    write(project, {"flows.py": APP + BAD_LINE})
    assert run("check", "--fix", "--exit-non-zero-on-fix", "flows.py").exit_code == 1


def test_diff_writes_nothing(project):
    write(project, {"flows.py": APP + BAD_LINE + REMAINS})
    before = (project / "flows.py").read_bytes()
    result = run("check", "--diff", "flows.py")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[:2] == ["--- flows.py", "+++ flows.py"]
    assert [line for line in lines[2:] if line[:1] in "+-"] == [
        '-' + BAD_LINE.rstrip(), '+' + GOOD_LINE.rstrip()]
    assert "Would fix 1 finding." in result.stderr
    assert (project / "flows.py").read_bytes() == before
    write(project, {"flows.py": APP + REMAINS})
    clean = run("check", "--diff", "flows.py")
    assert clean.exit_code == 0 and clean.stdout == ""


@pytest.mark.parametrize("encoding_case", ["bom", "latin-1", "crlf", "cr", "no-final-newline"])
def test_fix_keeps_encoding_bom_and_line_endings(project, encoding_case):
    text = APP + "# café\n" + BAD_LINE + REMAINS
    expected = APP + "# café\n" + GOOD_LINE + REMAINS
    if encoding_case == "bom":
        data, want = b"\xef\xbb\xbf" + text.encode(), b"\xef\xbb\xbf" + expected.encode()
    elif encoding_case == "latin-1":
        header = "# -*- coding: latin-1 -*-\n"
        data, want = (header + text).encode("latin-1"), (header + expected).encode("latin-1")
    elif encoding_case == "crlf":
        data, want = text.replace("\n", "\r\n").encode(), expected.replace("\n", "\r\n").encode()
    elif encoding_case == "cr":
        data, want = text.replace("\n", "\r").encode(), expected.replace("\n", "\r").encode()
    else:
        data, want = text.rstrip("\n").encode(), expected.rstrip("\n").encode()
    (project / "flows.py").write_bytes(data)
    result = run("check", "--fix", "flows.py")
    assert "CCL002" in result.stdout and result.exit_code == 1, result.stdout + result.stderr
    assert (project / "flows.py").read_bytes() == want


def test_fix_keeps_mode_and_owner_and_follows_symlinks(project):
    path = project / "flows.py"
    write(project, {"flows.py": APP + BAD_LINE})
    os.chmod(path, 0o640)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
    link = project / "link.py"
    link.symlink_to(path)
    assert run("check", "--fix", "link.py").exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(path)
    assert path.read_text() == APP + GOOD_LINE
    info = os.stat(path)
    assert stat.S_IMODE(info.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (65534, 65534)
    assert names(project) == ["flows.py", "link.py"]  # no temporary file left


def test_failed_write_leaves_the_file_and_no_temporary(project, monkeypatch):
    write(project, {"flows.py": APP + BAD_LINE})

    def refuse(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    result = run("check", "--fix", "flows.py")
    assert result.exit_code == 1
    assert "flows.py: cannot write the file (No space left on device); not fixed" in result.stderr
    assert (project / "flows.py").read_text() == APP + BAD_LINE
    assert names(project) == ["flows.py"]


def test_file_changed_during_analysis_is_skipped(project, monkeypatch):
    write(project, {"flows.py": APP + BAD_LINE})
    real_check, calls = engine.check, []

    def check_then_edit(paths, settings=None):
        report = real_check(paths, settings)
        calls.append(1)
        if len(calls) == 1:
            (project / "flows.py").write_text(APP + BAD_LINE + "# edited in the editor\n")
        return report

    monkeypatch.setattr(engine, "check", check_then_edit)
    result = run("check", "--fix", "flows.py")
    assert "flows.py: changed on disk during the analysis; not fixed" in result.stderr
    assert (project / "flows.py").read_text().endswith("# edited in the editor\n")
    assert result.exit_code == 1 and "CCL001" in result.stdout


def test_file_changed_before_the_write_is_skipped(project, monkeypatch):
    write(project, {"flows.py": APP + BAD_LINE})
    real_check, calls = engine.check, []

    def check_then_edit(paths, settings=None):
        calls.append(1)
        if len(calls) == 2:  # the round that checks the fixed text: the originals are read
            (project / "flows.py").write_text(APP + BAD_LINE + "# saved meanwhile\n")
        return real_check(paths, settings)

    monkeypatch.setattr(engine, "check", check_then_edit)
    result = run("check", "--fix", "flows.py")
    assert "flows.py: changed on disk since it was analysed; not fixed" in result.stderr
    assert (project / "flows.py").read_text().endswith("# saved meanwhile\n")
    assert "CCL001" in result.stdout  # the report is of the file as it is now


class Replace(Rule):
    """A stand-in rule for the fixer's mechanics: every ``pattern`` match gets a fix."""
    code, name, summary = "CCL001", "result-not-accepted", "test"
    pattern, replacement, applicability = "aaa", "b", "safe"

    def check(self, project):
        for facts in project.modules.values():
            key = os.path.abspath(facts.path)
            data = self.settings.overrides.get(key) or Path(facts.path).read_bytes()
            for number, line in enumerate(data.decode().splitlines(), 1):
                for match in re.finditer(f"(?=({self.pattern}))", line):
                    span = Span(number, match.start() + 1, number, match.start() + 1 + len(self.pattern))
                    yield self.finding(facts.path, span, "replace me",
                                       Fix("replace", (Edit(span, self.replacement),),
                                           self.applicability))


def use_rule(monkeypatch, rule):
    monkeypatch.setattr(Settings, "rules", lambda self: [rule])


def test_overlapping_fixes_converge_over_rounds(project, monkeypatch):
    class Shrink(Replace):
        pattern, replacement = "aa", "a"

    use_rule(monkeypatch, Shrink)
    write(project, {"m.py": "import celery\nx = 'aaaa'  # aa\n"})
    # round 1 takes the non-overlapping matches (0 and 2 of 'aaaa', and the comment's), round 2
    # the match that appears, round 3 finds nothing left
    outcome = fixer.fix(["m.py"], Settings(use_cache=False))
    assert (project / "m.py").read_text() == "import celery\nx = 'a'  # a\n"
    assert outcome.fixed == 4 and outcome.converged and outcome.report.findings == []


def test_fixes_that_never_converge_stop(project, monkeypatch):
    class Grow(Replace):
        pattern, replacement = "a", "aa"

    use_rule(monkeypatch, Grow)
    write(project, {"m.py": "import celery\nx = 'a'\n"})
    result = run("check", "--no-cache", "--fix", "m.py")
    assert f"did not converge after {fixer.MAX_ITERATIONS} rounds" in result.stderr
    assert (project / "m.py").read_text() == \
        "import celery\nx = '" + "a" * 2 ** fixer.MAX_ITERATIONS + "'\n"


def test_a_fix_that_breaks_the_syntax_is_not_written(project, monkeypatch):
    class Break(Replace):
        pattern, replacement = "aaa", "("

    use_rule(monkeypatch, Break)
    write(project, {"m.py": "import celery\naaa = 1\n"})
    result = run("check", "--no-cache", "--fix", "m.py")
    assert "m.py: the fixed file would not parse; not fixed" in result.stderr
    assert (project / "m.py").read_text() == "import celery\naaa = 1\n"
    assert result.exit_code == 1


def test_unsafe_fixes(project, monkeypatch):
    class Unsafe(Replace):
        applicability = "unsafe"

    use_rule(monkeypatch, Unsafe)
    write(project, {"m.py": "import celery\naaa = 1\n"})
    shown = run("check", "--no-cache", "m.py")
    assert "1 more fixable with --fix --unsafe-fixes." in shown.stdout and "[*]" not in shown.stdout
    assert run("check", "--no-cache", "--fix", "m.py").exit_code == 1
    assert (project / "m.py").read_text() == "import celery\naaa = 1\n"
    assert run("check", "--no-cache", "--fix", "--unsafe-fixes", "m.py").exit_code == 0
    assert (project / "m.py").read_text() == "import celery\nb = 1\n"


def test_apply_fixes_unit():
    def fix_at(line, column, end_column, content):
        return Fix("f", (Edit(Span(line, column, line, end_column), content),))

    text = "abcdef\r\nghi\r\n"
    fixed, applied = fixer.apply_fixes(text, [fix_at(1, 2, 4, "X"), fix_at(1, 3, 5, "Y"),
                                              fix_at(2, 4, 4, "!\n"), fix_at(1, 7, 7, "?")])
    assert fixed == "aXdef?\r\nghi!\r\n\r\n" and len(applied) == 3
    # two insertions at one point are ambiguous: the first wins; out of range edits are dropped
    fixed, applied = fixer.apply_fixes("ab\n", [fix_at(1, 2, 2, "1"), fix_at(1, 2, 2, "2"),
                                                fix_at(5, 1, 1, "x"), fix_at(1, 9, 9, "x")])
    assert fixed == "a1b\n" and len(applied) == 1
    # a multi-edit fix is applied whole or not at all
    both = Fix("two", (Edit(Span(1, 1, 1, 2), "A"), Edit(Span(1, 3, 1, 4), "C")))
    fixed, applied = fixer.apply_fixes("abc\n", [fix_at(1, 3, 4, "Z"), both])
    assert fixed == "AbC\n" and applied == [both]  # fixes are taken in order of position


def test_check_without_fix_never_writes(project):
    write(project, {"flows.py": APP + BAD_LINE})
    before = os.stat(project / "flows.py")
    run("check", "flows.py", "--format", "sarif")
    after = os.stat(project / "flows.py")
    assert (before.st_mtime_ns, before.st_ino) == (after.st_mtime_ns, after.st_ino)


def test_read_only_file_is_not_written(project):
    write(project, {"flows.py": APP + BAD_LINE})
    os.chmod(project / "flows.py", 0o444)
    result = run("check", "--fix", "flows.py")
    assert "flows.py: the file is read-only; not fixed" in result.stderr
    assert (project / "flows.py").read_text() == APP + BAD_LINE
    assert result.exit_code == 1


def test_file_deleted_before_the_write(project, monkeypatch):
    write(project, {"flows.py": APP + BAD_LINE})
    real_check, calls = engine.check, []

    def check_then_delete(paths, settings=None):
        calls.append(1)
        if len(calls) == 2:
            report = real_check(paths, settings)
            (project / "flows.py").unlink()
            return report
        return real_check(paths, settings)

    monkeypatch.setattr(engine, "check", check_then_delete)
    result = run("check", "--fix", "flows.py")
    assert "flows.py: cannot read the file any more; not fixed" in result.stderr
    assert names(project) == []


def test_every_fixture_fix_converges_compiles_and_is_idempotent(project):
    """All the rules' fixes over the bundled fixtures: what remains has no fix, the fixed files
    compile, and a second --fix changes nothing."""
    import json
    import shutil

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "fixtures", project / "fixtures",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = {p: p.read_bytes() for p in (project / "fixtures").rglob("*.py")}
    result = run("check", "fixtures", "--fix", "--unsafe-fixes", "--no-cache", "--format", "json")
    remaining = json.loads(result.stdout)
    assert "warning" not in result.stderr, result.stderr
    assert all(f["fix"] is None for f in remaining)
    changed = {p: p.read_bytes() for p in before if p.read_bytes() != before[p]}
    assert changed, "the fixtures have fixable findings"
    for path, data in changed.items():
        compile(data, str(path), "exec")
    assert json.loads(run("check", "fixtures", "--no-cache", "--format", "json").stdout) == remaining
    again = run("check", "fixtures", "--fix", "--unsafe-fixes", "--no-cache", "--quiet")
    assert all(p.read_bytes() == changed.get(p, before[p]) for p in before), again.stdout
