"""Helpers for the command-line tests: a small project on disk and the CLI run in-process."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from celery_chain_lint.cli import cli

APP = '''\
from celery import Celery, chain, group

app = Celery("example", broker="memory://", backend="cache+memory://")


@app.task
def add(x, y):
    return x + y


@app.task
def log_done(message):
    return message
'''

BAD_LINE = 'chain(add.s(2, 2), add.s(4), log_done.s("completed")).delay()\n'
GOOD_LINE = 'chain(add.s(2, 2), add.s(4), log_done.si("completed")).delay()\n'


def write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text) if text.startswith("\n") else text)
    return root


def run(*args, input=None, env=None):
    """``celery-chain-lint ARGS`` in-process; the click Result (exit_code, stdout, stderr)."""
    runner = CliRunner()
    return runner.invoke(cli, [str(a) for a in args], input=input, env=env,
                         catch_exceptions=False)


def findings(*args, input=None):
    result = run("check", "--format", "json", *args, input=input)
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    return json.loads(result.stdout)


def codes_at(*args, input=None):
    return sorted((Path(f["path"]).as_posix(), f["line"], f["code"])
                  for f in findings(*args, input=input))
