"""Output formats: text (--show-source, colour), json, sarif (validated against the SARIF 2.1.0
schema), github, gitlab, junit; --statistics, --output-file, --exit-zero, --quiet, stdin."""
from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from celery_chain_lint.reporters.text import use_color
from ccl_cli import APP, BAD_LINE, run, write

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"shop/__init__.py": "", "shop/tasks.py": APP,
                     "shop/flows.py": "from shop.tasks import add, log_done\nfrom celery import chain\n"
                                      "\n" + BAD_LINE + "add.s(1).delay()\n",
                     "shop/broken.py": "from celery import chain\ndef broken(:\n"})
    return tmp_path


def check(*args, input=None, env=None):
    return run("check", *args, input=input, env=env)


def test_text_default(project):
    result = check("shop")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1:] == [
        'shop/flows.py:4:30: CCL001 [*] log_done(message) will be called as log_done(<result of '
        'add>, "completed"): 2 positional arguments for 1 parameter; use log_done.si(...) to '
        'ignore the previous result',
        "shop/flows.py:5:1: CCL002 add(x, y) will be called as add(1): missing required argument 'y'",
        "Found 3 findings in 4 files.",
        "[*] 1 fixable with --fix.",
    ]
    assert result.stdout.startswith("shop/broken.py:2:") and " CCL999 " in result.stdout.splitlines()[0]
    assert "\033[" not in result.stdout  # not a terminal


def test_show_source_caret(project):
    write(project, {"shop/flows.py": "from shop.tasks import add, log_done\nfrom celery import chain\n"
                                     "\n# é😀\nif True:\n\tw = 'é' or chain(add.s(2, 2), log_done.s('x'))\n"})
    result = check("shop", "--show-source", "--ignore", "CCL999")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("shop/flows.py:6:32: CCL001")  # columns count code points
    assert lines[1:5] == [
        "  |",
        "6 |     w = 'é' or chain(add.s(2, 2), log_done.s('x'))",
        "  | " + " " * 34 + "^" * 15 + " CCL001",
        "  |",
    ]
    assert lines[2].index("log_done") == lines[3].index("^")  # tabs expanded on both lines


def test_colour_only_on_a_terminal_and_never_with_no_color(project, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_color(Terminal()) and not use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(Terminal())
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not use_color(Terminal())
    monkeypatch.delenv("NO_COLOR")
    assert use_color(io.StringIO())
    coloured = check("shop", env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert "\033[1m\033[31mCCL001\033[0m" in coloured.stdout
    assert "\033[" not in check("shop", env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout


def test_quiet_exit_zero_output_file(project):
    quiet = check("shop", "--quiet")
    assert quiet.exit_code == 1 and "Found" not in quiet.stdout and "CCL001" in quiet.stdout
    assert check("shop", "--exit-zero").exit_code == 0
    assert check("shop", "-e", "--format", "json").exit_code == 0
    out = project / "report.sarif"
    written = check("shop", "--format", "sarif", "--output-file", out)
    assert written.exit_code == 1 and written.stdout == ""
    jsonschema.validate(json.loads(out.read_text()), SCHEMA)
    clean = check("shop/tasks.py", "--quiet")
    assert clean.exit_code == 0 and clean.stdout == ""


def test_statistics(project):
    write(project, {"shop/more.py": "from shop.tasks import add\nadd.s(1).delay()\nadd.s().delay()\n"})
    result = check("shop", "--statistics")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "3\tCCL002\t    bad-arguments", "1\tCCL001\t[*] result-not-accepted",
        "1\tCCL999\t    could-not-analyse", "Found 5 findings in 5 files.",
        "Coverage: 1 app, 2 of 2 task-decorated functions indexed as tasks, 10 canvas sites: "
        "6 modelled, 4 unknown (4 dynamic construction); 5 files"]
    table = json.loads(check("shop", "--statistics", "--format", "json").stdout)
    assert table[0] == {"code": "CCL002", "name": "bad-arguments", "count": 3, "fixable": False}


def test_sarif_is_valid_and_complete(project):
    result = check("shop", "--format", "sarif", "--show-unused-noqa")
    log = json.loads(result.stdout)
    jsonschema.validate(log, SCHEMA)
    run_ = log["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    codes = [rule["id"] for rule in rules]
    assert {"CCL001", "CCL002", "CCL998", "CCL999"} <= set(codes)
    for rule in rules:
        assert rule["help"]["text"] and rule["help"]["markdown"] and rule["shortDescription"]["text"]
    assert "## How to fix" in rules[codes.index("CCL001")]["help"]["markdown"]
    results = run_["results"]
    assert [r["ruleId"] for r in results] == ["CCL999", "CCL001", "CCL002"]
    first = results[1]
    assert rules[first["ruleIndex"]]["id"] == "CCL001"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "shop/flows.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 4, "startColumn": 30, "endLine": 4, "endColumn": 53}
    assert first["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"] == {"text": "si"}


def test_sarif_of_the_bundled_fixtures(monkeypatch):
    monkeypatch.chdir(ROOT)
    log = json.loads(check("fixtures", "--format", "sarif").stdout)
    jsonschema.validate(log, SCHEMA)
    assert len(log["runs"][0]["results"]) > 20
    assert {r["ruleId"] for r in log["runs"][0]["results"]} >= {"CCL001", "CCL002"}


def test_sarif_absolute_paths_and_clean_runs(project, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    absolute = json.loads(check(project / "shop", "--format", "sarif").stdout)
    jsonschema.validate(absolute, SCHEMA)
    uri = absolute["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": (project / "shop" / "flows.py").as_uri()}
    clean = json.loads(check(project / "shop" / "tasks.py", "--format", "sarif").stdout)
    jsonschema.validate(clean, SCHEMA)
    assert clean["runs"][0]["results"] == []


def test_github(project):
    result = check("shop", "--format", "github")
    lines = result.stdout.splitlines()
    assert lines[1] == (
        "::error file=shop/flows.py,line=4,col=30,endLine=4,endColumn=53,title=CCL001::CCL001 "
        'log_done(message) will be called as log_done(<result of add>, "completed"): 2 positional '
        "arguments for 1 parameter; use log_done.si(...) to ignore the previous result "
        "(result-not-accepted)")
    assert all(line.startswith("::error file=") for line in lines)
    assert result.exit_code == 1
    write(project, {"we,ird:dir/x.py": "from celery import chain\ndef broken(:\n"})
    weird = check("we,ird:dir", "--format", "github").stdout
    assert weird.startswith("::error file=we%2Cird%3Adir/x.py,line=2,")


def test_gitlab(project):
    issues = json.loads(check("shop", "--format", "gitlab").stdout)
    assert [i["check_name"] for i in issues] == ["CCL999", "CCL001", "CCL002"]
    issue = issues[1]
    assert issue["location"] == {"path": "shop/flows.py", "positions": {
        "begin": {"line": 4, "column": 30}, "end": {"line": 4, "column": 53}}}
    assert issue["severity"] == "major" and issue["description"].startswith("(CCL001) log_done")
    assert len({i["fingerprint"] for i in issues}) == 3
    # moving the code does not change the fingerprints
    flows = project / "shop" / "flows.py"
    flows.write_text("\n\n" + flows.read_text())
    assert [i["fingerprint"] for i in json.loads(check("shop", "--format", "gitlab").stdout)] == \
        [i["fingerprint"] for i in issues]


def test_junit(project):
    tree = ET.fromstring(check("shop", "--format", "junit").stdout)
    assert tree.tag == "testsuites" and tree.get("failures") == "3"
    suites = {suite.get("name"): suite for suite in tree}
    assert set(suites) == {"shop/broken.py", "shop/flows.py"}
    cases = suites["shop/flows.py"].findall("testcase")
    assert [c.get("name") for c in cases] == ["celery-chain-lint.CCL001", "celery-chain-lint.CCL002"]
    assert cases[0].get("line") == "4" and cases[0].find("failure").get("type") == "CCL001"
    clean = ET.fromstring(check("shop/tasks.py", "--format", "junit").stdout)
    assert clean.get("failures") == "0" and clean.find("testsuite/testcase") is not None


def test_stdin_with_a_filename_resolves_the_package(project):
    source = (project / "shop" / "flows.py").read_text().replace("log_done.s(", "log_done.s(\n")
    result = check("-", "--stdin-filename", "shop/flows.py", "--format", "json", input=source)
    found = json.loads(result.stdout)
    assert [(f["path"], f["line"], f["code"]) for f in found] == [
        ("shop/flows.py", 4, "CCL001"), ("shop/flows.py", 6, "CCL002")]
    assert result.exit_code == 1
    new = check("-", "--stdin-filename", "shop/unsaved.py", input=source)
    assert new.stdout.startswith("shop/unsaved.py:4:30: CCL001")
    assert check("--stdin-filename", "shop/unsaved.py", "--quiet", input="x = 1\n").exit_code == 0


def test_stdin_without_a_filename(project):
    result = check("-", input=APP + BAD_LINE)
    assert result.stdout.startswith("-:14:30: CCL001"), result.stdout


def test_stdin_fix_prints_the_fixed_source(project):
    result = check("-", "--stdin-filename", "shop/flows.py", "--fix",
                   input=(project / "shop" / "flows.py").read_text())
    assert 'log_done.si("completed")' in result.stdout
    assert "CCL002" in result.stderr and result.exit_code == 1
    assert 'log_done.s("completed")' in (project / "shop" / "flows.py").read_text()  # untouched


def test_stdin_force_exclude(project):
    (project / "pyproject.toml").write_text('[tool.celery-chain-lint]\nextend-exclude = ["shop/flows.py"]\n')
    source = (project / "shop" / "flows.py").read_text()
    assert check("-", "--stdin-filename", "shop/flows.py", input=source).exit_code == 1
    excluded = check("-", "--stdin-filename", "shop/flows.py", "--force-exclude", input=source)
    assert excluded.exit_code == 0 and excluded.stdout == ""


def test_dash_with_other_paths_is_a_usage_error(project):
    assert check("-", "shop", input="").exit_code == 2
