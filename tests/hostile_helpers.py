"""Helpers shared by the hostile-input, property and safety tests (tests/test_hostile*.py,
test_property*.py, test_never_executes*.py, test_fix_safety*.py)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional

ROOT = Path(__file__).resolve().parents[1]
LINE_BREAK = re.compile(r"\r\n|\r|\n")

# A task module used by the inputs: ``add`` takes two arguments, ``log_done`` one.
TASKS = (
    "from celery import shared_task\n"
    "\n"
    "\n"
    "@shared_task\n"
    "def add(x, y):\n"
    "    return x + y\n"
    "\n"
    "\n"
    "@shared_task\n"
    "def log_done(message):\n"
    "    return message\n"
)
# One CCL001 (``log_done.s("done")`` receives add's result): proves a file was analysed.
BUG = 'chain(add.s(1, 2), log_done.s("done")).delay()'


def run_cli(*args: str, cwd, timeout: float = 300, input: Optional[bytes] = None,
            env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    # No empty entry: it would put the working directory (the analysed project) on sys.path
    # before the interpreter starts, where no program can defend itself (sitecustomize.py).
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "celery_chain_lint", *args], cwd=str(cwd),
                          capture_output=True, timeout=timeout, input=input, env=environment)


def check_json(*args: str, cwd, timeout: float = 300) -> tuple:
    """(exit code, findings, stderr) of ``check --format json --no-cache ARGS``."""
    result = run_cli("check", "--format", "json", "--no-cache", *args, cwd=cwd, timeout=timeout)
    stderr = result.stderr.decode("utf-8", "replace")
    assert_clean_exit(result.returncode, stderr)
    findings = json.loads(result.stdout.decode()) if result.stdout.strip() else []
    return result.returncode, findings, stderr


def assert_clean_exit(code: int, stderr: str) -> None:
    assert code in (0, 1, 2), (code, stderr)
    assert "Traceback (most recent call last)" not in stderr, stderr
    assert "internal error" not in stderr, stderr


def text_of(data: bytes) -> str:
    """The text positions are counted in: decoded as the analyser decodes it, or (a file it
    could not decode) with replacement characters."""
    from celery_chain_lint.load.source import SourceError, decode

    try:
        return decode(data).text
    except SourceError:
        for encoding in ("utf-8", "latin-1"):
            try:
                return data.decode(encoding, "replace")
            except LookupError:
                continue
        return data.decode("latin-1")


def lines_of(data: bytes) -> List[str]:
    return LINE_BREAK.split(text_of(data))


def assert_positions_inside(findings: Iterable[dict], cwd) -> None:
    """Every finding's start and end lie inside its file: 1 <= line <= lines, and
    1 <= column <= length of that line + 1; the start is not after the end."""
    for finding in findings:
        path = Path(cwd) / finding["path"]
        lines = lines_of(path.read_bytes())
        for line_key, column_key in (("line", "column"), ("end_line", "end_column")):
            line, column = finding[line_key], finding[column_key]
            assert 1 <= line <= len(lines), (finding, len(lines))
            assert 1 <= column <= len(lines[line - 1]) + 1, (finding, len(lines[line - 1]))
        assert (finding["line"], finding["column"]) <= (finding["end_line"],
                                                         finding["end_column"]), finding


def by_path(findings: Iterable[dict]) -> Dict[str, List[dict]]:
    table: Dict[str, List[dict]] = {}
    for finding in findings:
        table.setdefault(Path(finding["path"]).as_posix(), []).append(finding)
    return table


def write_files(root: Path, files: Dict[str, object]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
