"""The analysis reads each file's content once, from the buffer it was given.

With ``check - --stdin-filename F`` (the content of ``F`` on standard input) or in the editor
(an unsaved buffer stands in for its file), every reader of a module must see that content: the
facts, the calls of a factory given an app (index/factories.py), the Flask app a factory keeps
(index/flask_apps.py), the Flask config Celery reads (index/flask.py), the words CCL015 looks for
(rules/ccl015_not_a_task.py). Each test gives a buffer that differs from the file saved on disk
and requires the findings of the buffer."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from ccl_cli import codes_at, findings, write

# ---- a factory given the app: ``register(app)`` (index/factories.py) ----

TASKS = """
def register(app):
    @app.task
    def add(x, y):
        return x + y
"""

CELERY_SAVED = """
from celery import Celery
from proj.tasks import register

app = Celery("proj", broker="redis://127.0.0.1:6379/0")


def view():
    app.send_task("proj.tasks.add", args=(1,))
"""

# The buffer calls the factory; the saved file does not.
CELERY_BUFFER = """
from celery import Celery
from proj.tasks import register

app = Celery("proj", broker="redis://127.0.0.1:6379/0")
register(app)


def view():
    app.send_task("proj.tasks.add", args=(1,))
"""


@pytest.fixture
def given(tmp_path, monkeypatch):
    write(tmp_path, {"pyproject.toml": "", "proj/__init__.py": "",
                     "proj/tasks.py": textwrap.dedent(TASKS),
                     "proj/celery.py": textwrap.dedent(CELERY_SAVED)})
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_calls_of_a_factory_are_read_from_standard_input(given):
    path = os.path.join("proj", "celery.py")
    assert codes_at("--no-cache", path) == []  # saved: no task is made
    buffer = textwrap.dedent(CELERY_BUFFER)
    assert codes_at("--no-cache", "-", "--stdin-filename", path, input=buffer) == [
        ("proj/celery.py", 10, "CCL002")]
    # And the other way round: the saved file calls it, the buffer does not.
    (given / "proj" / "celery.py").write_text(buffer)
    assert codes_at("--no-cache", path) == [("proj/celery.py", 10, "CCL002")]
    assert codes_at("--no-cache", "-", "--stdin-filename", path,
                    input=textwrap.dedent(CELERY_SAVED)) == []


def test_the_calls_of_a_factory_are_read_from_the_editors_buffers(given):
    from celery_chain_lint.editor.server import findings_for

    path = os.path.join("proj", "celery.py")
    found = findings_for(path, textwrap.dedent(CELERY_BUFFER), {})
    assert [(f.span.line, f.code) for f in found] == [(10, "CCL002")]
    # The factory's module, open and unsaved, no longer makes a task of ``add``.
    found = findings_for(path, textwrap.dedent(CELERY_BUFFER),
                         {os.path.join("proj", "tasks.py"): "def register(app):\n    pass\n"})
    assert found == []


def test_the_cache_keeps_no_call_of_a_buffer(given):
    """A run with the cache, the buffer first and the saved file next, and the other way."""
    path = os.path.join("proj", "celery.py")
    buffer = textwrap.dedent(CELERY_BUFFER)
    for _ in range(2):
        assert codes_at("-", "--stdin-filename", path, input=buffer) == [
            ("proj/celery.py", 10, "CCL002")]
        assert codes_at(path) == []


# ---- the Celery app a Flask factory keeps on the Flask app (index/flask_apps.py) ----

FLASK_SAVED = """
from celery import Celery
from flask import Flask


def celery_init_app(app):
    celery_app = Celery(app.name)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def create_app():
    app = Flask(__name__)
    return app


flask_app = create_app()
celery = flask_app.extensions["celery"]


@celery.task
def add(x, y):
    return x + y


def view():
    add.delay(1)
"""

FLASK_BUFFER = FLASK_SAVED.replace("    return app\n", "    celery_init_app(app)\n    return app\n")


def test_the_app_a_flask_factory_keeps_is_read_from_the_buffer(tmp_path, monkeypatch):
    write(tmp_path, {"pyproject.toml": "", "web/__init__.py": "",
                     "web/app.py": textwrap.dedent(FLASK_SAVED)})
    monkeypatch.chdir(tmp_path)
    path = os.path.join("web", "app.py")
    assert codes_at("--no-cache", path) == []  # saved: nothing stored, ``add`` is no task
    assert codes_at("--no-cache", "-", "--stdin-filename", path,
                    input=textwrap.dedent(FLASK_BUFFER)) == [("web/app.py", 29, "CCL002")]
    from celery_chain_lint.editor.server import findings_for

    found = findings_for(path, textwrap.dedent(FLASK_BUFFER), {})
    assert [(f.span.line, f.code) for f in found] == [(29, "CCL002")]


# ---- the Flask config Celery reads (index/flask.py) ----

CONFIG_SAVED = """
from celery import Celery
from flask import Flask

flask_app = Flask(__name__)
flask_app.config.update(BROKER_URL="redis://127.0.0.1:6379/0",
                        CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/1")
flask_app.config["BROKER_TRANSPORT_OPTIONS"] = {"visibility_timeout": 60}

celery = Celery(flask_app.import_name)
celery.conf.update(flask_app.config)


@celery.task
def add(x, y):
    return x + y


def later():
    add.apply_async((1, 2), countdown=120)
"""

# The same, the transport options written two lines further down.
CONFIG_BUFFER = CONFIG_SAVED.replace('flask_app.config["BROKER',
                                     '# the visibility timeout\n\nflask_app.config["BROKER')


def test_the_flask_config_is_read_from_the_buffer_and_located_there(tmp_path, monkeypatch):
    write(tmp_path, {"pyproject.toml": "", "web/__init__.py": "",
                     "web/app.py": textwrap.dedent(CONFIG_SAVED)})
    monkeypatch.chdir(tmp_path)
    path = os.path.join("web", "app.py")
    saved, = findings("--no-cache", path)
    assert (saved["code"], saved["line"]) == ("CCL026", 20)
    assert f"sets it at {path}:8)" in saved["message"]
    buffer, = findings("--no-cache", "-", "--stdin-filename", path,
                       input=textwrap.dedent(CONFIG_BUFFER))
    assert (buffer["code"], buffer["line"]) == ("CCL026", 22)
    assert f"sets it at {path}:10)" in buffer["message"]
    # A buffer that no longer writes the timeout: kombu's default (3600 s) is not exceeded.
    assert findings("--no-cache", "-", "--stdin-filename", path, input=textwrap.dedent(
        CONFIG_SAVED).replace('flask_app.config["BROKER', "# flask_app.config[")) == []
    from celery_chain_lint.editor.server import findings_for

    found, = findings_for(path, textwrap.dedent(CONFIG_BUFFER), {})
    assert found.span.line == 22 and f"sets it at {path}:10)" in found.message


def test_a_flask_config_the_buffer_writes_in_a_function_is_unknown(tmp_path, monkeypatch):
    """The saved file writes the config at module level only; the buffer also in a function,
    which may run at any time: nothing is said."""
    write(tmp_path, {"pyproject.toml": "", "web/__init__.py": "",
                     "web/app.py": textwrap.dedent(CONFIG_SAVED)})
    monkeypatch.chdir(tmp_path)
    path = os.path.join("web", "app.py")
    buffer = textwrap.dedent(CONFIG_SAVED) + (
        "\n\ndef configure():\n    flask_app.config['BROKER_URL'] = 'amqp://'\n")
    assert findings("--no-cache", "-", "--stdin-filename", path, input=buffer) == []


# ---- the words CCL015 looks for (rules/ccl015_not_a_task.py) ----

NOT_A_TASK = {
    "pyproject.toml": "",
    "shop/__init__.py": "",
    "shop/tasks.py": "from celery import shared_task\n\n\n@shared_task\ndef add(x, y):\n"
                     "    return x + y\n",
}
CALLER = "from shop import tasks\n\n\ndef view():\n    tasks.missing.delay(1)\n"


def test_what_ccl015_reads_of_a_module_is_the_buffers(tmp_path, monkeypatch):
    # Saved, the calling module checks the tasks' attributes itself: nothing is said.
    write(tmp_path, {**NOT_A_TASK, "shop/views.py": CALLER + "\n\nhasattr(tasks, 'missing')\n"})
    monkeypatch.chdir(tmp_path)
    path = os.path.join("shop", "views.py")
    assert codes_at("--no-cache", "--select", "CCL015", path) == []
    assert codes_at("--no-cache", "--select", "CCL015", "-", "--stdin-filename", path,
                    input=CALLER) == [("shop/views.py", 5, "CCL015")]
    # The module of the tasks, open in the editor, gets its attributes at run time.
    from celery_chain_lint.editor.server import findings_for

    assert [f.code for f in findings_for(path, CALLER, {}) if f.code == "CCL015"] == ["CCL015"]
    dynamic = NOT_A_TASK["shop/tasks.py"] + "\n\ndef __getattr__(name):\n    return add\n"
    assert [f for f in findings_for(path, CALLER, {os.path.join("shop", "tasks.py"): dynamic})
            if f.code == "CCL015"] == []


@pytest.mark.parametrize("source", [
    b"getattr(x, 'a')", b"x = getattr (m, 'a')", b"hasattr\n(m, 'a')", b"setattr\t(m, 'a', 1)",
    b"mygetattr(x)", b"_getattr(x)", b"getattr", b"getattr = 1", b"x.getattr(m)", b"\xe9getattr(x)",
    b"import sys\nsys.modules['a']", b"m.__dict__", b"attr(", b"tattr(x)", b"settattr(x)",
    b"getattrs(x)", b"getattr" + b" " * 100 + b"(x)", b"",
])
def test_the_words_ccl015_looks_for_are_found_as_its_regular_expression_finds_them(source):
    from celery_chain_lint.facts.whole_file import CHECKS_ATTRIBUTES, checks_attributes

    assert checks_attributes(source) == (CHECKS_ATTRIBUTES.search(source) is not None)


def test_the_words_ccl015_looks_for_in_real_code():
    from celery_chain_lint.facts.whole_file import CHECKS_ATTRIBUTES, checks_attributes

    root = Path(__file__).resolve().parents[1]
    paths = list((root / "celery_chain_lint").rglob("*.py")) + list((root / "tests").glob("*.py"))
    found = 0
    for path in paths:
        data = path.read_bytes()
        expected = CHECKS_ATTRIBUTES.search(data) is not None
        assert checks_attributes(data) == expected, path
        found += expected
    assert 0 < found < len(paths)


# ---- what the index reads instead of the file comes back from the cache ----


def test_the_facts_read_instead_of_the_file_come_back_from_the_cache(tmp_path, monkeypatch):
    """Module-level calls, a factory's stores and a Flask config's uses are facts like the
    others: a run whose facts all come from the cache reports the same, parsing nothing."""
    from celery_chain_lint import engine
    from celery_chain_lint.config.settings import Settings

    write(tmp_path, {"pyproject.toml": "", "proj/__init__.py": "",
                     "proj/tasks.py": textwrap.dedent(TASKS),
                     "proj/celery.py": textwrap.dedent(CELERY_BUFFER),
                     "web/__init__.py": "", "web/app.py": textwrap.dedent(FLASK_BUFFER),
                     "web/config.py": textwrap.dedent(CONFIG_SAVED),
                     # A backend the Flask config reads from the environment: unknown.
                     "web/env.py": (Path(__file__).resolve().parents[1] / "fixtures" / "flaskapp"
                                    / "env_backend.py").read_text()})
    past = 10 ** 9  # written long ago: the cache trusts their stat
    for path in tmp_path.rglob("*.py"):
        os.utime(path, ns=(past, past))
    monkeypatch.chdir(tmp_path)

    def run():
        report = engine.check(["."], Settings(cache_dir=str(tmp_path / "c"),
                                              select=["CCL002", "CCL008", "CCL026"]))
        return [(f.path, f.span.line, f.code, f.message) for f in report.findings], report.stats

    cold, cold_stats = run()
    assert [found[:3] for found in cold] == [
        (os.path.join("proj", "celery.py"), 10, "CCL002"),
        (os.path.join("web", "app.py"), 29, "CCL002"),
        (os.path.join("web", "config.py"), 20, "CCL026")]
    assert cold_stats["parsed"] > 0
    # Not the findings of the last run (a file changed), the facts of the cache.
    (tmp_path / "proj" / "__init__.py").write_text("# changed\n")
    os.utime(tmp_path / "proj" / "__init__.py", ns=(past + 1, past + 1))
    warm, warm_stats = run()
    assert warm == cold
    assert "results_cached" not in warm_stats
    assert warm_stats["parsed"] == 0 and warm_stats["cached"] >= 5, warm_stats
