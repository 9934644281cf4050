"""# noqa as flake8 and ruff read it, CCL998 unused-noqa, --ignore-noqa and --add-noqa."""
from __future__ import annotations

import pytest

from celery_chain_lint.fixes.noqa import scan
from ccl_cli import APP, BAD_LINE, GOOD_LINE, codes_at, findings, run, write

BAD = BAD_LINE.rstrip("\n")  # CCL001 at column 20


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lint(project, *lines, args=()):
    write(project, {"flows.py": APP + "".join(line + "\n" for line in lines)})
    return [(line, code) for _, line, code in codes_at("flows.py", *args)]


@pytest.mark.parametrize("comment", [
    "# noqa", "# NOQA", "#noqa", "# noqa: CCL001", "# noqa:CCL001", "# noqa: E501, CCL001",
    "# noqa: E501 CCL001", "# noqa: CCL00", "# noqa: ccl001", "# type: ignore  # noqa: CCL001",
    "# noqa: CCL001 -- the result is ignored on purpose",
])
def test_directive_suppresses(project, comment):
    assert lint(project, f"{BAD}  {comment}") == []


@pytest.mark.parametrize("comment", ["# noqa: CCL002", "# noqa: E501", "# no qa", "# noqa CCL002x"])
def test_directive_for_other_codes_does_not(project, comment):
    if comment == "# noqa CCL002x":  # flake8: no colon, so a blanket noqa
        assert lint(project, f"{BAD}  {comment}") == []
    else:
        assert lint(project, f"{BAD}  {comment}") == [(14, "CCL001")]


def test_noqa_inside_a_string_is_not_a_directive(project):
    line = 'x = "# noqa"; ' + BAD
    assert lint(project, line) == [(14, "CCL001")]
    assert lint(project, 'x = """', '# noqa', '"""; ' + BAD) == [(16, "CCL001")]


def test_finding_spanning_lines_uses_its_first_line(project):
    assert lint(project, "chain(add.s(2, 2),", '      log_done.s(  # noqa: CCL001', '"done")).delay()') == []
    assert lint(project, "chain(add.s(2, 2),", '      log_done.s(', '"done")).delay()  # noqa') == [
        (15, "CCL001")]


def test_backslash_continuation_uses_the_last_line(project):
    lines = ['workflow = add.s(2, 2) | log_done.s("done") \\', "    | add.s(1)  # noqa: CCL001"]
    assert lint(project, *lines) == []
    assert lint(project, lines[0], "    | add.s(1)") == [(14, "CCL001")]


def test_scan_maps_multiline_strings_and_continuations():
    text = 'a = """\nx\n"""  # noqa: CCL001\nb = 1 + \\\n  2 + \\\n  3\nc = 4  # NoQA\n'
    noqa = scan(text)
    assert noqa.noqa_line(1) == 3 and noqa.noqa_line(2) == 3 and noqa.noqa_line(4) == 6
    assert noqa.directive_for(1).codes == ("CCL001",)
    assert noqa.directives[7].codes is None
    assert scan("def broken(:\n  # noqa\n").directives  # a tokenize error keeps what was read


def test_ignore_noqa(project):
    assert lint(project, f"{BAD}  # noqa", args=["--ignore-noqa"]) == [(14, "CCL001")]


def test_noqa_does_not_hide_a_file_that_cannot_be_parsed(project):
    write(project, {"broken.py": "from celery import chain\ndef broken(:  # noqa\n"})
    assert [c for _, _, c in codes_at("broken.py")] == ["CCL999"]
    assert codes_at("broken.py", "--ignore", "CCL999") == []


def test_unused_noqa_is_off_by_default(project):
    assert lint(project, GOOD_LINE.rstrip() + "  # noqa: CCL001") == []


def test_unused_noqa_reports_ccl_codes_only(project):
    lines = [GOOD_LINE.rstrip() + "  # noqa: CCL001, E501",  # 14: CCL001 unused
             BAD + "  # noqa: CCL001, CCL002",  # 15: CCL002 unused
             "x = 1  # noqa",  # blanket: left alone
             "y = 2  # noqa: E501, W291",  # other tools' codes: left alone
             "z = 3  # noqa: CCL123"]  # unknown
    write(project, {"flows.py": APP + "\n".join(lines) + "\n"})
    found = findings("flows.py", "--show-unused-noqa")
    assert [(f["line"], f["code"]) for f in found] == [(14, "CCL998"), (15, "CCL998"), (18, "CCL998")]
    assert "unused: CCL001" in found[0]["message"]
    assert "unused: CCL002" in found[1]["message"]
    assert "unknown: CCL123" in found[2]["message"]
    assert found[0]["column"] == len(GOOD_LINE.rstrip()) + 3
    assert [f["code"] for f in findings("flows.py", "--extend-select", "CCL998")] == ["CCL998"] * 3
    assert [f["code"] for f in findings("flows.py", "--select", "ALL")] == ["CCL998"] * 3


def test_unused_noqa_non_enabled(project):
    write(project, {"flows.py": APP + BAD + "  # noqa: CCL001\n"})
    found = findings("flows.py", "--select", "CCL002,CCL998")
    assert [f["code"] for f in found] == ["CCL998"]
    assert "non-enabled: CCL001" in found[0]["message"]


def test_unused_noqa_fix(project):
    lines = [GOOD_LINE.rstrip() + "  # noqa: CCL001",
             GOOD_LINE.rstrip() + "  # noqa: E501, CCL001",
             GOOD_LINE.rstrip() + "  # keep me  # noqa: CCL001",
             BAD + "  # noqa: CCL001, CCL002"]
    write(project, {"flows.py": APP + "\n".join(lines) + "\n"})
    result = run("check", "--show-unused-noqa", "--fix", "flows.py")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (project / "flows.py").read_text().splitlines()[13:] == [
        GOOD_LINE.rstrip(), GOOD_LINE.rstrip() + "  # noqa: E501",
        GOOD_LINE.rstrip() + "  # keep me", BAD + "  # noqa: CCL001"]


def test_unused_noqa_respects_per_file_ignores(project):
    write(project, {"flows.py": APP + GOOD_LINE.rstrip() + "  # noqa: CCL001\n"})
    assert codes_at("flows.py", "--show-unused-noqa", "--per-file-ignores", "flows.py:CCL998") == []


def test_add_noqa(project):
    source = (APP + BAD + "\n" + BAD + "  # noqa: E501\n" + BAD + "  # explained\n"
              + "add.s(1).delay()\n" + GOOD_LINE)
    write(project, {"flows.py": source})
    result = run("check", "--add-noqa", "flows.py")
    assert result.exit_code == 0, result.stderr
    assert "Added 4 noqa directives." in result.stderr
    assert (project / "flows.py").read_text().splitlines()[13:] == [
        BAD + "  # noqa: CCL001", BAD + "  # noqa: E501, CCL001",
        BAD + "  # explained  # noqa: CCL001", "add.s(1).delay()  # noqa: CCL002",
        GOOD_LINE.rstrip()]
    assert run("check", "flows.py").exit_code == 0
    again = run("check", "--add-noqa", "flows.py")
    assert "Added 0 noqa directives." in again.stderr
    assert run("check", "--show-unused-noqa", "flows.py").exit_code == 0


def test_add_noqa_keeps_line_endings_and_multiline_strings(project):
    source = (APP + 'x = """\n"""; ' + BAD + "\n").replace("\n", "\r\n").encode()
    write(project, {"flows.py": source})
    assert run("check", "--add-noqa", "flows.py").exit_code == 0
    data = (project / "flows.py").read_bytes()
    assert data.endswith(b'x = """\r\n"""; ' + BAD.encode() + b"  # noqa: CCL001\r\n")
    assert data.count(b"\r\n") == source.count(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    assert run("check", "flows.py").exit_code == 0


def test_unused_noqa_reads_only_files_that_may_name_our_codes(project, monkeypatch):
    """Most files of a real application carry other tools' ``# noqa``: tokenizing them all
    for CCL998 took a third of a cold run on weblate. A file with no finding is read only
    when a line may hold one of our codes, in any case."""
    from celery_chain_lint.fixes import noqa

    write(project, {"flows.py": APP + GOOD_LINE,
                    "others.py": "import os  # noqa: F401\nx = 1  # NOQA\n",
                    "ours.py": "y = 2  # NoQa:ccl001\n"})
    scanned = []
    real_scan = noqa.scan
    monkeypatch.setattr(noqa, "scan", lambda text: scanned.append(text) or real_scan(text))
    found = findings(".", "--select", "ALL")
    assert [(f["path"].rsplit("/", 1)[-1], f["code"]) for f in found] == [("ours.py", "CCL998")]
    assert scanned == ["y = 2  # NoQa:ccl001\n"]
