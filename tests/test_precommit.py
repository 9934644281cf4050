"""The pre-commit hooks, for real: ``pre-commit try-repo`` installs this repository (its HEAD
commit) into its own environment and runs the hooks in a fresh git repository with a bad file:
the check hook fails with the finding, the fix hook rewrites the file, then the check passes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ccl_cli import APP, BAD_LINE, GOOD_LINE

ROOT = Path(__file__).resolve().parents[1]
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=_git_env()).stdout.strip()


def _git_env():
    env = dict(os.environ)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_NOSYSTEM="1")
    return env


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory):
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def repo(tmp_path):
    git("init", "-q", cwd=tmp_path)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "flows.py").write_text(APP + BAD_LINE)
    git("add", ".", cwd=tmp_path)
    git("commit", "-q", "-m", "bad workflow", cwd=tmp_path)
    return tmp_path


def try_repo(repo: Path, hook: str, home: Path):
    head = git("rev-parse", "HEAD", cwd=ROOT)
    env = _git_env()
    env["PRE_COMMIT_HOME"] = str(home)
    env.pop("NO_COLOR", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook,
                           "--ref", head, "--all-files", "--color", "never"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=900)


def test_hook_definitions():
    assert [hook["id"] for hook in HOOKS] == ["celery-chain-lint", "celery-chain-lint-fix"]
    for hook in HOOKS:
        assert hook["language"] == "python" and hook["entry"].startswith("celery-chain-lint check")
        assert hook["pass_filenames"] is False  # findings depend on other modules


def test_pre_commit_try_repo_fails_then_fixes_then_passes(repo, pre_commit_home):
    failing = try_repo(repo, "celery-chain-lint", pre_commit_home)
    output = failing.stdout + failing.stderr
    assert failing.returncode == 1, output
    assert "app/flows.py:14:30: CCL001" in output
    assert "Failed" in output

    fixing = try_repo(repo, "celery-chain-lint-fix", pre_commit_home)
    assert fixing.returncode == 1, fixing.stdout + fixing.stderr  # files were modified
    assert "files were modified by this hook" in fixing.stdout
    assert (repo / "app" / "flows.py").read_text() == APP + GOOD_LINE

    passing = try_repo(repo, "celery-chain-lint", pre_commit_home)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout


def test_readme_pre_commit_config(repo, pre_commit_home):
    """The README's .pre-commit-config.yaml, pointed at this repository's HEAD."""
    from test_readme import ALL

    block = next(b for b in ALL if b.marker == "pre-commit-config")
    config = yaml.safe_load(block.body)
    hooks = {hook["id"] for hook in HOOKS}
    for entry in config["repos"]:
        assert {hook["id"] for hook in entry["hooks"]} <= hooks
        entry["repo"], entry["rev"] = str(ROOT), git("rev-parse", "HEAD", cwd=ROOT)
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    env = _git_env()
    env["PRE_COMMIT_HOME"] = str(pre_commit_home)
    result = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files",
                             "--color", "never"], cwd=repo, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "app/flows.py:14:30: CCL001" in result.stdout
