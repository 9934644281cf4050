"""``check``, and ``verify`` without ``--execute``, never import, exec or eval the analysed code,
its conftest.py, setup.py or settings (issue 7).

The project below does something visible the moment any of its modules runs: it writes a marker
file, connects to a socket the test listens on, and exits the process with status 97. Modules
named like the linter's own dependencies (``click.py``, ``libcst.py``, ``json.py``...) sit at its
root, where ``python -m`` would put them first on sys.path. An audit hook (PEP 578) then watches
one ``check`` run from the inside.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hostile_helpers import ROOT, run_cli, write_files

MARKER_TEXT = "NEVER_RUN_7f3a"  # in every module of the project, to recognise its source


def _payload(marker: Path, port: int) -> str:
    return textwrap.dedent(f"""\
        # {MARKER_TEXT}
        import os as _os, socket as _socket
        open({str(marker)!r}, "a").write(__name__ + "\\n")
        try:
            _socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
        except OSError:
            pass
        _os._exit(97)
        """)


@pytest.fixture
def trap(tmp_path):
    """(project directory, marker path, listening socket)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    marker = tmp_path / "IMPORTED"
    project = tmp_path / "project"
    payload = _payload(marker, port)
    files = {
        "pyproject.toml": "[tool.celery-chain-lint]\n",
        "setup.py": payload + "from setuptools import setup\nsetup(name='trap')\n",
        "conftest.py": payload,
        "manage.py": payload,
        "settings.py": payload + "CELERY_BROKER_URL = 'memory://'\n",
        "celeryconfig.py": payload + "broker_url = 'memory://'\n",
        "sitecustomize.py": payload,
        "usercustomize.py": payload,
        # The linter's own imports, shadowed if the working directory came first on sys.path.
        "click.py": payload,
        "libcst.py": payload,
        "json.py": payload,
        "tokenize.py": payload,
        "kombu.py": payload,
        "trap/__init__.py": payload,
        "trap/celery.py": payload + "from celery import Celery\napp = Celery('trap')\n",
        "trap/tasks.py": payload + textwrap.dedent("""\
            from celery import shared_task


            @shared_task
            def add(x, y):
                return x + y


            @shared_task
            def log_done(message):
                return message
            """),
        "trap/flows.py": payload + textwrap.dedent("""\
            import sys
            from celery import chain
            from trap.tasks import add, log_done

            chain(add.s(1, 2), log_done.s("done")).delay()
            exec("print('exec ran')")
            eval("1 + 1")
            __import__("settings")
            sys.exit(98)
            """),
    }
    write_files(project, files)
    yield project, marker, listener
    listener.close()


def _assert_nothing_ran(marker: Path, listener: socket.socket, result) -> None:
    assert result.returncode not in (97, 98), result.stderr
    assert not marker.exists(), marker.read_text()
    try:
        connection, _ = listener.accept()
    except (BlockingIOError, socket.timeout):
        connection = None
    assert connection is None, "a module of the analysed project opened a connection"


def test_check_runs_none_of_it(trap):
    project, marker, listener = trap
    for args in (["check", "--no-cache", "."], ["check", "."], ["check", "--format", "json", "."],
                 ["check", "trap/flows.py"], ["check", "--diff", "."]):
        result = run_cli(*args, cwd=project, timeout=300)
        _assert_nothing_ran(marker, listener, result)
        assert result.returncode == 1, result.stderr  # the chain bug is found: it was read
        assert b"Traceback" not in result.stderr


def test_the_console_script_runs_none_of_it(trap):
    project, marker, listener = trap
    script = Path(sys.executable).parent / "celery-chain-lint"
    if not script.exists():
        pytest.skip("no console script next to the interpreter")
    result = subprocess.run([str(script), "check", "--no-cache", "."], cwd=project,
                            capture_output=True, timeout=300)
    _assert_nothing_ran(marker, listener, result)
    assert result.returncode == 1, result.stderr


def test_verify_without_execute_runs_none_of_it(trap):
    project, marker, listener = trap
    result = run_cli("verify", "--format", "json", "--timeout", "5", ".", cwd=project,
                     timeout=600)
    _assert_nothing_ran(marker, listener, result)
    assert result.returncode in (0, 1, 2), result.stderr
    assert b"Traceback" not in result.stderr


AUDIT = textwrap.dedent("""\
    import json, os, sys
    PROJECT = os.path.realpath(sys.argv[1])
    MARKER = sys.argv[2]
    events = []

    def inside(path):
        try:
            path = os.fsdecode(path)
        except TypeError:
            return False
        return os.path.realpath(path).startswith(PROJECT + os.sep)

    def hook(event, args):
        if event == "import":
            module, filename = args[0], args[1]
            if module in PROJECT_MODULES or (filename and inside(filename)):
                events.append(["import", module])
        elif event == "exec":
            code = args[0]
            filename = getattr(code, "co_filename", "")
            if inside(filename) or MARKER in repr(getattr(code, "co_consts", ())):
                events.append(["exec", filename])
        elif event == "compile":
            source, filename = args[0], args[1]
            text = source.decode("latin-1") if isinstance(source, bytes) else str(source)
            if MARKER in text:
                caller = sys._getframe(1).f_code
                # ast.parse builds a syntax tree only: no byte code, nothing runs.
                if not (caller.co_name == "parse" and caller.co_filename.endswith("ast.py")):
                    events.append(["compile", caller.co_filename, caller.co_name])
        elif event == "open":
            path, mode, flags = args
            writing = (mode and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if path is not None and not isinstance(path, int) and writing and inside(path):
                events.append(["open-for-writing", os.fsdecode(path)])
        elif event in ("socket.connect", "subprocess.Popen", "os.system", "os.exec",
                       "os.posix_spawn", "os.spawn", "ctypes.dlopen"):
            events.append([event, repr(args)[:200]])

    PROJECT_MODULES = {"setup", "conftest", "manage", "settings", "celeryconfig", "trap",
                       "trap.celery", "trap.tasks", "trap.flows", "celery", "kombu"}
    sys.addaudithook(hook)
    from celery_chain_lint.cli import main
    try:
        main(["check", "--no-cache", "--format", "json", PROJECT])
    except SystemExit as done:
        code = done.code
    print("AUDIT" + json.dumps({"code": code, "events": events}))
    """)


def test_audit_hook_sees_no_import_exec_compile_or_write_of_the_project(trap, tmp_path):
    project, marker, listener = trap
    result = subprocess.run([sys.executable, "-c", AUDIT, str(project), MARKER_TEXT],
                            cwd=tmp_path, capture_output=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    _assert_nothing_ran(marker, listener, result)
    lines = [line for line in result.stdout.decode().splitlines() if line.startswith("AUDIT")]
    assert lines, result.stderr
    audit = json.loads(lines[-1][len("AUDIT"):])
    assert audit["code"] == 1
    assert audit["events"] == []


def test_the_repository_never_imported_fixture_stays_unimported():
    marker = Path("/tmp/celery_chain_lint_IMPORTED")
    marker.unlink(missing_ok=True)
    result = run_cli("check", "--no-cache", "fixtures/never_imported", cwd=ROOT)
    assert result.returncode == 1
    assert not marker.exists()
