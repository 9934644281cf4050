"""Every example in README.md runs, so the documentation cannot rot.

Each fenced block is preceded by a marker comment saying how it is tested:

- ``<!-- test: shell -->``: lines starting with ``$ `` are commands, run with bash in a scratch
  directory holding a copy of ``fixtures/``, the files of the Quick start section (the demo
  project) and those written by earlier blocks of the same section; the lines after a command are its expected output, line by line, where a line
  ``...`` stands for any number of lines. A command must exit 0 or 1 (2 is a usage error).
- ``<!-- test: file PATH -->``: the block is written to PATH in the scratch directory; a TOML
  configuration is loaded (it must be valid) and ``check`` must accept it.
- ``<!-- test: github-workflow -->``: the workflow's ``run:`` steps that call the tool are run in
  the scratch directory; they must fail on the bundled fixtures and write a valid SARIF file that
  the upload step (``if: always()``) uploads.
- ``<!-- test: action-usage -->``: the ``with:`` keys are inputs of ``action.yml``.
- ``<!-- test: gitlab-ci -->``: the job's ``celery-chain-lint`` script lines run; the report is
  a Code Quality JSON array; artifacts are kept ``when: always`` (the job fails on findings).
- ``<!-- test: pre-commit-config -->``: run by tests/test_precommit.py with pre-commit itself.
- ``<!-- test: helix-languages -->``: valid TOML naming ``celery-chain-lint server``, which runs.
- ``<!-- test: install -->``: the commands run in one shell on the system's Python (no virtual
  environment active), this checkout in place of ``/path/to/celery-chain-lint``.
- In the CI recipes (``github-workflow``, ``gitlab-ci``) the ``pip install`` line is not run:
  it installs from a repository URL over the network; the install recipe above covers it.
- ``<!-- not tested: REASON -->``: says why not (installs packages, runs the test suite).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import jsonschema
import pytest
import yaml

from celery_chain_lint.config import files as config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"<!--\s*(test|not tested):\s*(.*?)\s*-->")
FENCE = re.compile(r"^(`{3,})(\S*)\s*$")


@dataclass
class Block:
    section: str
    line: int
    language: str
    body: str
    marker: Optional[str]  # "shell", "file PATH", ... or None
    skipped: Optional[str]  # the reason, for "not tested"


def blocks(text: str) -> List[Block]:
    found, section, pending, lines = [], "", None, text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        marker = MARKER.search(line)
        if marker:
            pending = marker.groups()
        fence = FENCE.match(line)
        if fence:
            end = index + 1
            while end < len(lines) and lines[end].strip() != fence.group(1):
                end += 1
            kind, value = pending or (None, None)
            found.append(Block(section, index + 1, fence.group(2), "\n".join(lines[index + 1:end]) + "\n",
                               value if kind == "test" else None,
                               value if kind == "not tested" else None))
            pending = None
            index = end
        elif line.strip() and not marker:
            pending = None if not line.startswith("<!--") else pending
        index += 1
    return found


ALL = blocks(README.read_text())
SECTIONS = sorted({b.section for b in ALL if b.marker and not b.marker.startswith("pre-commit")},
                  key=[b.section for b in ALL].index)


def test_every_example_says_how_it_is_tested():
    unmarked = [f"README.md:{b.line} ({b.section})" for b in ALL if not b.marker and not b.skipped]
    assert not unmarked, "fenced blocks without a test marker: " + ", ".join(unmarked)
    assert any(b.marker == "shell" for b in ALL)


def test_every_configuration_key_is_documented():
    text = README.read_text()
    for key in config.KEYS:
        assert f"`{key.name}`" in text, key.name


@pytest.fixture
def scratch(tmp_path):
    shutil.copytree(ROOT / "fixtures", tmp_path / "fixtures",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def bash(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def matches(expected: List[str], actual: List[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[start:]) for start in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and matches(expected[1:], actual[1:])


def run_shell(block: Block, cwd: Path) -> None:
    commands = []
    for line in block.body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    assert commands, f"README.md:{block.line}: a shell example without a '$ ' command"
    for command, expected in commands:
        result = bash(command, cwd)
        assert result.returncode in (0, 1), (command, result.stdout, result.stderr)
        while expected and not expected[-1].strip():
            expected.pop()
        if expected:
            actual = (result.stdout + result.stderr).splitlines()
            assert matches(expected, actual), (
                f"README.md:{block.line}: `{command}` printed:\n" + "\n".join(actual))


def write_file(block: Block, cwd: Path) -> None:
    name = block.marker.split(None, 1)[1]
    path = cwd / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.body)
    if path.suffix == ".toml":
        config.load(str(path))  # raises ConfigError on an unknown key or code
        result = bash(f"celery-chain-lint check --config {name} fixtures", cwd)
        assert result.returncode in (0, 1), result.stderr


def run_workflow(block: Block, cwd: Path) -> None:
    workflow = yaml.safe_load(block.body)
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    runs = [step for step in steps if "celery-chain-lint" in step.get("run", "")
            and "pip install" not in step["run"]]
    assert runs, "the workflow runs the tool"
    failed = False
    for step in runs:
        result = bash(step["run"], cwd)
        assert result.returncode in (0, 1), (step["run"], result.stderr)
        failed = failed or result.returncode == 1
    assert failed, "the workflow fails the build on findings"
    uploads = [step for step in steps if "upload-sarif" in step.get("uses", "")]
    assert uploads and uploads[0].get("if") == "always()"
    sarif = cwd / uploads[0]["with"]["sarif_file"]
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(json.loads(sarif.read_text()), schema)


def check_action_usage(block: Block, cwd: Path) -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    usage = yaml.safe_load(block.body)
    steps = usage if isinstance(usage, list) else [usage]
    for step in steps:
        if "uses" in step and "celery-chain-lint" in step["uses"]:
            assert set(step.get("with", {})) <= set(action["inputs"]), step


RUNNERS = {"shell": run_shell, "file": write_file, "github-workflow": run_workflow,
           "action-usage": check_action_usage}


def run_gitlab(block: Block, cwd: Path) -> None:
    job = next(iter(yaml.safe_load(block.body).values()))
    lines = [line for line in job["script"] if line.startswith("celery-chain-lint")]
    assert lines
    for line in lines:
        assert bash(line, cwd).returncode == 1  # findings fail the job
    assert job["artifacts"]["when"] == "always"
    report = json.loads((cwd / job["artifacts"]["reports"]["codequality"]).read_text())
    assert report and all({"description", "check_name", "fingerprint", "severity", "location"}
                          <= set(issue) for issue in report)


RUNNERS["gitlab-ci"] = run_gitlab


def check_helix_languages(block: Block, cwd: Path) -> None:
    """Helix's ``languages.toml``: valid TOML whose language server is the ``server``
    command, used by the Python language."""
    table = config.toml_module().loads(block.body)
    server = table["language-server"]["celery-chain-lint"]
    assert bash(" ".join([server["command"], *server["args"], "--help"]), cwd).returncode == 0
    [python] = [language for language in table["language"] if language["name"] == "python"]
    assert "celery-chain-lint" in python["language-servers"]


RUNNERS["helix-languages"] = check_helix_languages
CHECKOUT_PLACEHOLDER = "/path/to/celery-chain-lint"


def run_install(block: Block, cwd: Path) -> None:
    """The install recipe, as a user on a clean machine runs it: one shell (the activation
    holds for the next commands), the system's Python, no virtual environment active, this
    checkout in place of the placeholder path."""
    commands = [line[2:] for line in block.body.splitlines() if line.startswith("$ ")]
    expected = [line for line in block.body.splitlines() if line and not line.startswith("$ ")]
    script = "set -e\n" + "\n".join(c.replace(CHECKOUT_PLACEHOLDER, shlex.quote(str(ROOT)))
                                     for c in commands)
    python_dir = str(Path(getattr(sys, "_base_executable", sys.executable)).parent)
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join([python_dir] + [
        entry for entry in env.get("PATH", "").split(os.pathsep)
        if entry != str(Path(sys.executable).parent)])
    result = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert matches(expected, [line for line in result.stdout.splitlines() if line]), result.stdout
    assert (cwd / ".venv" / "bin" / "celery-chain-lint").exists()


RUNNERS["install"] = run_install
QUICK_START = "Quick start"


@pytest.mark.parametrize("section", SECTIONS)
def test_readme_section_examples(section, scratch):
    if section != QUICK_START:
        for block in ALL:
            if block.section == QUICK_START and block.marker and block.marker.startswith("file "):
                write_file(block, scratch)
    for block in ALL:
        if block.section != section or not block.marker:
            continue
        kind = block.marker.split(None, 1)[0]
        if kind == "pre-commit-config":
            continue
        assert kind in RUNNERS, f"README.md:{block.line}: unknown marker {block.marker!r}"
        RUNNERS[kind](block, scratch)


def test_action_yml_installs_into_its_own_venv_and_runs(scratch):
    """The composite action's two steps, under the shell GitHub runs them with, on a clean
    machine's Python: the install step makes its own virtual environment (a system Python may
    refuse ``pip install``) and installs this repository into it; the run step passes ``args``
    split into words but never glob-expanded."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    install, run = action["runs"]["steps"]
    python = getattr(sys, "_base_executable", None) or shutil.which("python3")
    env = dict(os.environ, CCL_PYTHON=python, CCL_VENV=str(scratch / "action-venv"),
               GITHUB_ACTION_PATH=str(ROOT), NO_COLOR="1")
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    for step in (install, run):  # every input reaches the scripts as a variable
        for name, value in step["env"].items():
            assert value.startswith(("${{ inputs.", "${{ runner.temp }}")), (name, value)
    installed = _step(install, scratch, env)
    assert installed.returncode == 0, installed.stderr
    assert (scratch / "action-venv" / "bin" / "celery-chain-lint").exists()

    env.update(CCL_ARGS="fixtures/shop --extend-select CCL998", CCL_SARIF="out.sarif")
    result = _step(run, scratch, env)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("::error file=fixtures/shop/")
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(json.loads((scratch / "out.sarif").read_text()), schema)
    # '*.py' reaches the tool as written (it excludes every file); the shell would have made
    # it 'setup.py' here, which excludes nothing.
    (scratch / "setup.py").write_text("")
    env.update(CCL_ARGS="fixtures/shop --extend-exclude *.py", CCL_SARIF="")
    assert _step(run, scratch, env).returncode == 0
    env["CCL_ARGS"] = "fixtures/shop --select NOPE"
    assert _step(run, scratch, env).returncode == 2


def _step(step: dict, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_readme_rules_table_is_the_catalogues():
    """The table is generated (``celery-chain-lint rules --format markdown``): a rule added,
    renamed or given a fix changes it, and the README must follow."""
    from celery_chain_lint.rules.catalogue import markdown_table

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    marker = "<!-- rules table: generated by `celery-chain-lint rules --format markdown` -->\n"
    assert marker in text
    start = text.index(marker) + len(marker)
    end = text.index("\n\n", start) + 1
    assert text[start:end] == markdown_table(), \
        "regenerate it: celery-chain-lint rules --format markdown"
