"""Hostile paths: missing, a directory named x.py, symlink loops, special files, unreadable files
and directories, files deleted during the run, thousands of files (issue 7)."""
from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from hostile_helpers import (
    BUG,
    TASKS,
    assert_clean_exit,
    assert_positions_inside,
    by_path,
    check_json,
    run_cli,
    write_files,
)

FLOW = f"from celery import chain\nfrom tasks import add, log_done\n\n{BUG}\n"


@pytest.fixture
def project(tmp_path):
    write_files(tmp_path, {"pyproject.toml": "", "tasks.py": TASKS, "flow.py": FLOW})
    return tmp_path


def ccl001_paths(findings):
    return sorted(f["path"] for f in findings if f["code"] == "CCL001")


def test_a_path_that_does_not_exist_is_named_and_exits_2(project):
    for args in (["missing.py"], ["flow.py", "missing/dir"]):
        result = run_cli("check", "--no-cache", *args, cwd=project)
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert args[-1] in stderr and "Traceback" not in stderr


def test_a_directory_named_like_a_python_file(project):
    write_files(project, {"odd.py/inner.py": FLOW, "odd.py/__init__.py": ""})
    for args in (["."], ["odd.py"]):
        code, findings, _ = check_json(*args, cwd=project)
        assert code == 1
        assert "odd.py/inner.py" in ccl001_paths(findings)
        assert_positions_inside(findings, project)


def test_symlink_loops_and_dangling_links(project):
    os.symlink("self.py", project / "self.py")
    os.symlink("b.py", project / "a.py")
    os.symlink("a.py", project / "b.py")
    os.symlink("nowhere.py", project / "dangling.py")
    (project / "pkg").mkdir()
    (project / "pkg" / "__init__.py").write_text("")
    os.symlink("..", project / "pkg" / "up")  # a directory loop
    os.symlink(str(project / "pkg"), project / "pkg" / "again")
    code, findings, _ = check_json(".", cwd=project, timeout=120)
    assert code == 1
    assert ccl001_paths(findings) == ["flow.py"]
    result = run_cli("check", "--no-cache", "self.py", cwd=project)
    assert result.returncode == 2 and b"self.py" in result.stderr
    assert b"Traceback" not in result.stderr


def test_special_files_named_py_do_not_hang(project):
    os.mkfifo(project / "fifo.py")
    os.symlink("/dev/zero", project / "zero.py")
    os.symlink("/dev/urandom", project / "random.py")
    code, findings, _ = check_json(".", cwd=project, timeout=120)
    assert code == 1 and ccl001_paths(findings) == ["flow.py"]
    for name in ("fifo.py", "zero.py"):  # given explicitly: not a file, nothing to read
        result = run_cli("check", "--no-cache", name, cwd=project, timeout=120)
        assert_clean_exit(result.returncode, result.stderr.decode())


def _without_file_capabilities():
    """A command prefix under which permissions apply even to root, or None."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_unreadable_file_and_directory(project):
    """Permission denied: the file gets a located CCL999, the others are analysed. As root,
    permissions are enforced by dropping CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (setpriv)."""
    import subprocess
    import sys

    prefix = _without_file_capabilities()
    if prefix is None:
        pytest.skip("running as root without setpriv: file permissions cannot be enforced")
    write_files(project, {"secret.py": "import celery\n" + FLOW, "locked/inner.py": FLOW})
    os.chmod(project / "secret.py", 0)
    os.chmod(project / "locked", 0)
    try:
        result = subprocess.run(prefix + [sys.executable, "-m", "celery_chain_lint", "check",
                                          "--format", "json", "--no-cache", "."],
                                cwd=project, capture_output=True, timeout=300)
    finally:
        os.chmod(project / "secret.py", 0o644)
        os.chmod(project / "locked", 0o755)
    stderr = result.stderr.decode()
    assert_clean_exit(result.returncode, stderr)
    import json

    findings = json.loads(result.stdout)
    assert result.returncode == 1
    secret = by_path(findings)["secret.py"]
    assert [(f["code"], f["line"], f["column"]) for f in secret] == [("CCL999", 1, 1)]
    assert "Permission denied" in secret[0]["message"]
    assert "flow.py" in ccl001_paths(findings)


def test_a_file_deleted_after_discovery(project, monkeypatch):
    """Discovered, then gone before it is read: a CCL999 naming why; the rest is analysed."""
    from celery_chain_lint import engine, load
    from celery_chain_lint.config.settings import Settings

    write_files(project, {"gone.py": "import celery\n" + FLOW})
    discover = load.discover

    def discover_then_delete(*args, **kwargs):
        found = discover(*args, **kwargs)
        (project / "gone.py").unlink()
        return found

    monkeypatch.setattr(load, "discover", discover_then_delete)
    monkeypatch.chdir(project)
    report = engine.check(["."], Settings(use_cache=False), jobs=1)
    found = {(f.path, f.code): f for f in report.findings}
    assert ("flow.py", "CCL001") in found
    gone = found[("gone.py", "CCL999")]
    assert "cannot read file: No such file or directory" in gone.message


def test_files_deleted_and_rewritten_while_the_run_is_in_progress(project):
    """Another process deletes and rewrites files while ``check`` runs over a thousand files:
    whatever it sees, it exits 0/1/2 without a traceback, and flow.py is still analysed."""
    files = {f"pkg{i % 10}/m{i}.py": f"import celery\n\n\ndef f{i}(x):\n    return x\n"
             for i in range(1000)}
    files.update({f"pkg{i}/__init__.py": "" for i in range(10)})
    write_files(project, files)
    stop = threading.Event()

    def vandal():
        index = 0
        while not stop.is_set():
            path = project / f"pkg{index % 10}" / f"m{index}.py"
            try:
                if index % 3:
                    path.unlink()
                else:
                    path.write_bytes(b"\x00\xff garbage (")
            except OSError:
                pass
            index = (index + 7) % 1000
            time.sleep(0.001)

    thread = threading.Thread(target=vandal, daemon=True)
    thread.start()
    try:
        code, findings, _ = check_json(".", cwd=project, timeout=600)
    finally:
        stop.set()
        thread.join()
    assert code in (1, 2)
    if code == 1:
        assert "flow.py" in ccl001_paths(findings)
        for finding in findings:
            if finding["code"] == "CCL999":
                assert finding["path"].startswith("pkg")


def test_thousands_of_files(project):
    files = {f"app{i % 20}/module{i}.py": f"import os\n\n\ndef helper{i}(x):\n    return os.sep * x\n"
             for i in range(3000)}
    files.update({f"app{i}/__init__.py": "" for i in range(20)})
    files.update({f"flows/flow{i}.py": FLOW for i in range(10)})
    write_files(project, files)
    started = time.monotonic()
    code, findings, _ = check_json(".", cwd=project, timeout=600)
    assert code == 1
    assert ccl001_paths(findings) == sorted(["flow.py"] + [f"flows/flow{i}.py" for i in range(10)])
    assert time.monotonic() - started < 300


def test_a_huge_file_is_not_read_whole(project):
    """A 70 MB file (sparse: no disk used) gets a CCL999 without being read into memory."""
    with open(project / "huge.py", "wb") as handle:
        handle.truncate(70 * 2 ** 20)
    for args in ([], ["--show-source"]):
        code, findings, _ = check_json(*args, ".", cwd=project)
        assert code == 1
        huge = by_path(findings)["huge.py"]
        assert [(f["code"], f["line"], f["column"]) for f in huge] == [("CCL999", 1, 1)]
        assert "file too large to analyse" in huge[0]["message"]
        assert ccl001_paths(findings) == ["flow.py"]


# ---- file names that are not valid UTF-8, or that break a line-oriented format ----

# b"caf\xe9.py" is Latin-1, not UTF-8: Python names it "caf\udce9.py"; every format prints
# "caf\ufffd.py" (as ruff does), SARIF the URI "caf%E9.py".
UNDECODABLE = b"caf\xe9.py"
ODD_NAMES = ["new\nline.py", "with space.py", "#hash.py", "co:lon,comma.py", "-dash.py",
             "100%.py"]
FORMATS = ["text", "json", "sarif", "github", "gitlab", "junit"]


@pytest.fixture
def hostile_tree(project):
    """The project, its bug copied under a non-UTF-8 name (in a package, so that the name is
    in a module's too) and under each odd name."""
    write_files(project, {"pkg/__init__.py": ""})
    with open(os.path.join(os.fsencode(project), b"pkg", UNDECODABLE), "w") as handle:
        handle.write(FLOW)
    write_files(project, {name: FLOW for name in ODD_NAMES})
    return project


def _cli(project, *args, env=None):
    result = run_cli("check", *args, cwd=project, env=env)
    stderr = result.stderr.decode("utf-8", "replace")
    assert_clean_exit(result.returncode, stderr)
    assert result.returncode == 1, stderr
    return result.stdout.decode("utf-8")  # strict: the output is valid UTF-8


def _expected_paths():
    return sorted(["flow.py", "pkg/caf\ufffd.py"] + ODD_NAMES)


@pytest.mark.parametrize("cache", [True, False])
def test_every_reporter_reports_a_tree_with_an_undecodable_and_odd_file_names(
        hostile_tree, cache):
    """Exit 1 with the finding of every file, cached or not; each format valid, with the same
    paths (strict UTF-8 output even where Python's stdout would print the raw bytes)."""
    import json
    import xml.etree.ElementTree as ET

    import jsonschema

    from hostile_helpers import ROOT

    extra = [] if cache else ["--no-cache"]
    env = {"PYTHONIOENCODING": "utf-8"}  # strict: a lone surrogate would raise
    outputs = {fmt: _cli(hostile_tree, "--format", fmt, *extra, ".", env=env) for fmt in FORMATS}
    assert sorted(f["path"] for f in json.loads(outputs["json"])) == _expected_paths()
    gitlab = json.loads(outputs["gitlab"])
    assert sorted(i["location"]["path"] for i in gitlab) == _expected_paths()
    assert len({i["fingerprint"] for i in gitlab}) == len(gitlab)
    sarif = json.loads(outputs["sarif"])
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema)
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                  for r in sarif["runs"][0]["results"])
    assert uris == sorted(["%23hash.py", "-dash.py", "100%25.py", "co%3Alon%2Ccomma.py",
                           "flow.py", "new%0Aline.py", "pkg/caf%E9.py", "with%20space.py"])
    suites = ET.fromstring(outputs["junit"].split("\n", 1)[1])
    assert sorted(s.get("name") for s in suites) == _expected_paths()
    text_paths = sorted(line.split(":4:20: CCL001 ")[0] for line in outputs["text"].splitlines()
                        if ":4:20: CCL001 " in line)
    assert text_paths == sorted(['"new\\nline.py"', "#hash.py", "-dash.py", "100%.py",
                                 "co:lon,comma.py", "flow.py", "pkg/caf\ufffd.py",
                                 "with space.py"])
    assert len(outputs["text"].splitlines()) == len(ODD_NAMES) + 2 + 2  # one line a finding


def test_github_annotations_escape_odd_file_names(hostile_tree):
    """Workflow-command properties: ``%``, CR, LF, ``:`` and ``,`` percent-encoded."""
    lines = _cli(hostile_tree, "--format", "github", "--no-cache", ".").splitlines()
    files = sorted(line.split("file=", 1)[1].split(",line=", 1)[0] for line in lines)
    assert files == sorted(["flow.py", "pkg/caf\ufffd.py", "new%0Aline.py", "with space.py",
                            "#hash.py", "co%3Alon%2Ccomma.py", "-dash.py", "100%25.py"])
    assert all(line.startswith("::error file=") for line in lines)


def test_one_undecodable_file_given_alone_and_its_diff(hostile_tree):
    """``check`` of the file itself (a pre-commit run), and ``--diff``, whose header names it."""
    name = os.path.join(b"pkg", UNDECODABLE).decode("utf-8", "surrogateescape")
    env = {"PYTHONIOENCODING": "utf-8"}
    assert _cli(hostile_tree, name, env=env).startswith("pkg/caf\ufffd.py:4:")
    result = run_cli("check", "--diff", name, cwd=hostile_tree, env=env)
    assert_clean_exit(result.returncode, result.stderr.decode("utf-8", "replace"))
    assert result.returncode == 1
    assert result.stdout.decode("utf-8").startswith("--- pkg/caf\ufffd.py\n+++ pkg/caf\ufffd.py\n")


def test_statistics_and_output_file_with_an_undecodable_name(hostile_tree):
    assert "CCL001" in _cli(hostile_tree, "--statistics", ".")
    for fmt in ("text", "junit"):
        report = hostile_tree / f"report.{fmt}"
        _cli(hostile_tree, "--format", fmt, "--output-file", str(report), ".")
        assert "caf\ufffd.py" in report.read_text(encoding="utf-8")


def test_printable_renders_undecodable_bytes_as_ruff_does():
    from celery_chain_lint.reporters.printable import one_line, readable, uri_reference, xml_text

    assert readable("caf\udce9.py") == "caf\ufffd.py"
    assert readable("shop/flows.py") == "shop/flows.py"
    assert readable("\ud800 alone") == "\ufffd alone"  # no undecodable byte made it
    assert one_line("a\nb\x01.py") == '"a\\nb\\x01.py"' and one_line("a b.py") == "a b.py"
    assert xml_text("a\x01\udce9") == "a\ufffd\ufffd"
    assert uri_reference("pkg/caf\udce9 x.py") == "pkg/caf%E9%20x.py"
    assert uri_reference("shop/flows.py") == "shop/flows.py"
