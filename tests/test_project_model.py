"""The project model on the layouts of real repositories that used to leave the index empty.

Each tree is written here, as small as shows the shape (the shapes were measured on public
applications: a root ``__init__.py``, a stray ``celery.py``, Flask's ``make_celery``, services
sharing module names, Celery's own repository, a file outside any project marker). Every tree
calls ``add.delay(1)`` on a task taking two arguments: once the task is indexed, the run reports
CCL002 there, and the coverage says the task was found. Beside each, a near miss that must stay
as it was.
"""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Dict

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celery_chain_lint import engine
from celery_chain_lint.cli import cli
from celery_chain_lint.config.settings import Settings

TASKS = """
@{app}.task
def add(x, y):
    return x + y
"""
CALL = "add.delay(1)\n"


def write(root: Path, files: Dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if text.startswith("\n") else text)


def found(root: Path, *paths: str, **settings) -> set:
    os.chdir(root)
    report = engine.check(list(paths) or ["."], Settings(use_cache=False, **settings), jobs=1)
    return {(f.path, f.span.line, f.code) for f in report.findings}


def coverage(root: Path, *paths: str):
    os.chdir(root)
    return engine.check(list(paths) or ["."], Settings(use_cache=False), jobs=1).total_coverage()


@pytest.fixture(autouse=True)
def _back_to_cwd():
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


# ---- a root __init__.py ----

ROOT_INIT = {
    "__init__.py": "",
    "main/__init__.py": "",
    "main/celery.py": 'from celery import Celery\napp = Celery("main")\n',
    "shop/__init__.py": "",
    "shop/tasks.py": "from main.celery import app\n" + TASKS.format(app="app"),
    "shop/views.py": "from shop.tasks import add\n\ndef view():\n    " + CALL,
}


def test_a_root_init_does_not_hide_the_tasks(tmp_path):
    write(tmp_path, ROOT_INIT)
    assert found(tmp_path) == {(os.path.join("shop", "views.py"), 4, "CCL002")}
    seen = coverage(tmp_path)
    assert (seen.apps, seen.task_like, seen.tasks) == (1, 1, 1)


def test_a_root_package_imported_by_its_name_keeps_its_name(tmp_path):
    """The near miss: the repository root is the package, and the code says so."""
    tree = tmp_path / "site"
    write(tree, {
        "__init__.py": "",
        "main/__init__.py": "",
        "main/celery.py": 'from celery import Celery\napp = Celery("main")\n',
        "shop/__init__.py": "",
        "shop/tasks.py": "from site.main.celery import app\n" + TASKS.format(app="app"),
        "shop/views.py": "from site.shop.tasks import add\n\ndef view():\n    " + CALL,
    })
    assert found(tree) == {(os.path.join("shop", "views.py"), 4, "CCL002")}


def test_a_django_celery_module_beside_import_celery_is_not_taken_for_a_root(tmp_path):
    """``proj/celery.py`` and ``import celery``: the real Celery, and ``proj`` stays a package
    (its settings are found by name for the chord's backend)."""
    write(tmp_path, {
        "manage.py": "",
        "proj/__init__.py": "from .celery import app as celery_app\n",
        "proj/celery.py": 'import celery\napp = celery.Celery("proj")\n'
                          'app.config_from_object("django.conf:settings", namespace="CELERY")\n',
        "proj/settings.py": 'CELERY_RESULT_BACKEND = "redis://"\n',
        "shop/__init__.py": "",
        "shop/tasks.py": "from celery import shared_task, chord\n"
                         + TASKS.format(app="shared_task").replace("@shared_task.task",
                                                                   "@shared_task")
                         + "\ndef run():\n    chord([add.s(1, 2)], add.s(3)).delay()\n    "
                         + CALL,
    })
    assert found(tmp_path) == {(os.path.join("shop", "tasks.py"), 9, "CCL002")}


# ---- a stray celery.py ----

def test_a_stray_celery_module_is_not_celery(tmp_path):
    write(tmp_path, {
        "docker/celery.py": "broker_url = 'redis://'\n",
        "shop/__init__.py": "",
        "shop/tasks.py": "from celery import shared_task\n\n@shared_task\n"
                         "def add(x, y):\n    return x + y\n\ndef view():\n    " + CALL,
    })
    assert found(tmp_path) == {(os.path.join("shop", "tasks.py"), 8, "CCL002")}
    assert coverage(tmp_path).tasks == 1


# ---- apps made by factories ----

FACTORY = {
    "app/__init__.py": "from flask import Flask\nfrom app.factory import make_celery\n\n"
                       "flask_app = Flask(__name__)\ncelery = make_celery(flask_app)\n",
    "app/factory.py": """
        from celery import Celery

        def make_celery(app):
            celery = Celery(app.import_name)
            celery.conf.update(app.config)
            return celery
    """,
    "app/tasks.py": "from celery import chord\nfrom app import celery\n"
                    + TASKS.format(app="celery")
                    + "\ndef view():\n    " + CALL,
}


def test_an_app_made_by_flasks_make_celery_recipe(tmp_path):
    write(tmp_path, FACTORY)
    assert found(tmp_path) == {(os.path.join("app", "tasks.py"), 9, "CCL002")}


def test_a_factory_app_configured_inside_the_factory_is_not_said_to_lack_a_backend(tmp_path):
    """``celery.conf.update(app.config)`` may set anything: a chord there is no CCL008."""
    files = dict(FACTORY)
    files["app/tasks.py"] = files["app/tasks.py"].replace(
        CALL, "chord([add.s(1, 2)], add.s(3)).delay()\n")
    write(tmp_path, files)
    assert found(tmp_path) == set()


def test_a_function_returning_something_else_is_no_app(tmp_path):
    write(tmp_path, {
        "app/__init__.py": "def make_queue(name):\n    return {'name': name}\n\n"
                           "queue = make_queue('q')\n",
        "app/tasks.py": "from app import queue\n\n@queue.task\ndef add(x, y):\n"
                        "    return x + y\n\ndef view():\n    " + CALL,
    })
    assert found(tmp_path) == set()


# ---- tasks made on the app a factory is given ----

GIVEN = {
    "proj/__init__.py": "",
    "proj/celery.py": """
        from celery import Celery
        from proj.tasks import register

        app = Celery("proj", broker="redis://127.0.0.1:6379/0")
        register(app)
    """,
    "proj/tasks.py": """
        def register(app):
            @app.task
            def add(x, y):
                return x + y

            @app.task(bind=True, name="proj.renamed")
            def scale(self, value, factor):
                return value * factor
    """,
    "proj/views.py": """
        from proj.celery import app

        def view():
            app.send_task("proj.tasks.add", args=(1,))
            app.signature("proj.renamed", args=(2,)).delay()
    """,
}
GIVEN_FINDINGS = {(os.path.join("proj", "views.py"), 5, "CCL002"),
                  (os.path.join("proj", "views.py"), 6, "CCL002")}


def _given(**changes) -> Dict[str, str]:
    files = dict(GIVEN)
    for name, (old, new) in changes.items():
        files[name] = files[name].replace(old, new)
    return files


def test_tasks_made_on_the_app_a_factory_is_given_are_indexed(tmp_path):
    """Celery names them after their module and function (observed on 5.7.0)."""
    write(tmp_path, GIVEN)
    assert found(tmp_path) == GIVEN_FINDINGS
    covered = coverage(tmp_path)
    assert (covered.task_like, covered.tasks) == (2, 2)
    from projects import findings
    with_filter, _ = findings(["."], True, tmp_path)
    without, _ = findings(["."], False, tmp_path)
    assert with_filter == without


def test_the_app_is_followed_through_another_factory_and_keywords(tmp_path):
    write(tmp_path, _given(**{
        "proj/celery.py": ("register(app)", "import proj.tasks\n"
                           "        proj.tasks.register_all(celery_app=app)"),
        "proj/tasks.py": ("def register(app):", "def register_all(celery_app):\n"
                          "            register(app=celery_app)\n\n\n"
                          "        def register(app):"),
    }))
    assert found(tmp_path) == GIVEN_FINDINGS


@pytest.mark.parametrize("call", [
    "",  # never called: whatever it is given elsewhere may not be Celery
    "register(Scheduler())",  # an object with a ``task`` method of another library
    "other = Celery('other')\nregister(app)\nregister(other)",  # two apps: which one?
    "register(make())",
])
def test_a_factory_not_given_one_known_app_makes_no_task(tmp_path, call):
    files = dict(GIVEN)
    files["proj/celery.py"] = (
        "from celery import Celery\nfrom proj.tasks import register\n\n"
        "app = Celery('proj', broker='redis://127.0.0.1:6379/0')\n\n"
        "class Scheduler:\n    def task(self, f):\n        return f\n\n"
        "def make():\n    return Scheduler()\n\n" + call + "\n")
    write(tmp_path, files)
    assert found(tmp_path) == set()
    assert coverage(tmp_path).tasks == 0


def test_an_app_that_is_a_local_of_the_calling_function_is_not_followed(tmp_path):
    files = dict(GIVEN)
    files["proj/celery.py"] = (
        "from celery import Celery\nfrom proj.tasks import register\n\n"
        "app = Celery('proj', broker='redis://127.0.0.1:6379/0')\n\n"
        "def setup():\n    app = Celery('local')\n    register(app)\n")
    write(tmp_path, files)
    assert found(tmp_path) == set()


APPLIED = {
    "proj/__init__.py": "",
    "proj/impl.py": """
        def add_impl(x, y):
            return x + y


        def make_mul(app):
            def mul(x, y):
                return x * y
            return app.task(mul)
    """,
    "proj/celery.py": """
        from celery import Celery
        from proj.impl import add_impl, make_mul

        app = Celery("proj", broker="redis://127.0.0.1:6379/0")
        add = app.task(add_impl)
        renamed = app.task(name="proj.renamed", bind=True)(add_impl)
        mul = make_mul(app)


        def go():
            add.delay(1)
            renamed.delay(1, 2, 3)
            mul.delay(1)
            add_impl(1, 2)
    """,
}


def test_a_task_made_by_calling_the_decorator_on_a_function(tmp_path):
    """``app.task(fn)``: the task Celery makes of ``fn``; ``fn`` stays a plain function."""
    write(tmp_path, APPLIED)
    path = os.path.join("proj", "celery.py")
    assert found(tmp_path) == {(path, 12, "CCL002"), (path, 13, "CCL002"), (path, 14, "CCL002")}
    from projects import findings
    assert findings(["."], True, tmp_path)[0] == findings(["."], False, tmp_path)[0]


def test_the_decorator_of_something_else_applied_to_a_function_makes_no_task(tmp_path):
    files = dict(APPLIED)
    files["proj/celery.py"] = APPLIED["proj/celery.py"].replace(
        'app = Celery("proj", broker="redis://127.0.0.1:6379/0")',
        "class Queue:\n            def task(self, fn=None, **kw):\n"
        "                return fn\n\n        app = Queue()")
    write(tmp_path, files)
    assert found(tmp_path) == set()


# ---- the Celery app a Flask application factory keeps on the Flask app ----

FLASK_FACTORY = """
from celery import Celery
from flask import Flask


def celery_init_app(app):
    celery_app = Celery(app.name)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def make_celery(app):
    celery = Celery(app.import_name)
    celery.conf.update(app.config)
    return celery


def create_app():
    app = Flask(__name__)
    app.config.from_mapping(CELERY={"result_backend": "redis://"})
    celery_init_app(app)
    app.celery = make_celery(app)
    app.extensions["cache"] = dict(app.config)
    return app
"""


def _flask_tasks(owner: str) -> Dict[str, str]:
    return {
        "web/__init__.py": FLASK_FACTORY,
        "web/tasks.py": "from celery import chord\nfrom web import create_app\n\n"
                        "flask_app = create_app()\ncelery = " + owner + "\n"
                        + TASKS.format(app="celery") + "\ndef view():\n    " + CALL
                        + "\ndef fan_out():\n    chord([add.s(1, 2)], add.s(3)).delay()\n",
    }


@pytest.mark.parametrize("owner", ['flask_app.extensions["celery"]', "flask_app.celery"])
def test_the_celery_app_a_flask_factory_keeps_on_the_flask_app(tmp_path, owner):
    """Its settings come from the Flask config object: unknown, so no CCL008."""
    write(tmp_path, _flask_tasks(owner))
    assert found(tmp_path) == {(os.path.join("web", "tasks.py"), 12, "CCL002")}
    assert coverage(tmp_path).tasks == 1


@pytest.mark.parametrize("owner", [
    'flask_app.extensions["cache"]',  # not an app
    'flask_app.extensions["other"]',  # nothing stored under that key
    "flask_app.config",
])
def test_what_else_a_flask_factory_keeps_is_no_app(tmp_path, owner):
    write(tmp_path, _flask_tasks(owner))
    assert found(tmp_path) == set()
    assert coverage(tmp_path).tasks == 0


def test_a_flask_factory_returning_different_things_is_not_followed(tmp_path):
    files = _flask_tasks('flask_app.extensions["celery"]')
    files["web/__init__.py"] = FLASK_FACTORY.replace(
        "    return app\n", "    if app.debug:\n        return None\n    return app\n")
    write(tmp_path, files)
    assert found(tmp_path) == set()


# ---- services that share module names ----

def _service(app: str) -> str:
    return f'from celery import Celery\napp = Celery("{app}")\n' + textwrap.dedent(
        TASKS.format(app="app")) + "\ndef view():\n    " + CALL


def test_services_sharing_module_names_are_each_analysed(tmp_path):
    write(tmp_path, {".git/HEAD": "", "services/a/tasks.py": _service("a"),
                     "services/b/tasks.py": _service("b")})
    expected = {(os.path.join("services", side, "tasks.py"), 9, "CCL002") for side in "ab"}
    assert found(tmp_path) == expected
    assert found(tmp_path, "services/b") == {(os.path.join("services", "b", "tasks.py"), 9,
                                              "CCL002")}
    # Argument order does not choose a winner.
    assert found(tmp_path, "services/b", "services/a") == expected


def test_a_module_of_the_same_name_without_tasks_does_not_hide_the_other(tmp_path):
    write(tmp_path, {
        "monitor/main.py": 'from celery import Celery\napp = Celery("monitor")\n',
        "worker/main.py": _service("worker"),
        "worker/flows.py": "from main import add\n\ndef later():\n    " + CALL,
    })
    assert found(tmp_path) == {(os.path.join("worker", "main.py"), 9, "CCL002"),
                               (os.path.join("worker", "flows.py"), 4, "CCL002")}


def test_a_shared_module_is_seen_by_every_service(tmp_path):
    """The near miss: ``common/`` holds the tasks, each service its own ``main``."""
    write(tmp_path, {
        "common/__init__.py": "",
        "common/jobs.py": 'from celery import Celery\napp = Celery("c")\n'
                          + textwrap.dedent(TASKS.format(app="app")),
        "a/main.py": "from common.jobs import add\n\ndef view():\n    " + CALL,
        "b/main.py": "from common.jobs import add\n\ndef view():\n    add.delay(1, 2)\n",
    })
    assert found(tmp_path) == {(os.path.join("a", "main.py"), 4, "CCL002")}


# ---- a directory without __init__.py inside a package ----

# saleor's ``saleor/order/migrations/tasks/``: a namespace portion of the package, whose modules
# import the app relatively.
NAMESPACE_PORTION = {
    ".git/HEAD": "",
    "shop/__init__.py": "",
    "shop/celeryconf.py": 'from celery import Celery\napp = Celery("shop")\n',
    "shop/order/__init__.py": "",
    "shop/order/migrations/__init__.py": "",
    "shop/order/migrations/tasks/backfill.py": "from ....celeryconf import app\n"
                                               + TASKS.format(app="app"),
    "shop/order/migrations/0002_backfill.py":
        "from .tasks.backfill import add\n\ndef run():\n    " + CALL,
    # Near miss: pytest imports a directory of test modules by their own names.
    "shop/order/tests/test_backfill.py":
        "from shop.order.migrations.tasks.backfill import add\n\n"
        "def test_it():\n    add.delay(1, 2)\n",
    "shop/other/tests/test_backfill.py": "def test_nothing():\n    pass\n",
}


def test_a_directory_without_init_inside_a_package_is_part_of_it(tmp_path):
    write(tmp_path, NAMESPACE_PORTION)
    migrations = os.path.join("shop", "order", "migrations")
    assert found(tmp_path) == {(os.path.join(migrations, "0002_backfill.py"), 4, "CCL002")}
    seen = coverage(tmp_path)
    assert (seen.task_like, seen.tasks) == (1, 1)


# A Flask grocery app: ``backend/main.py`` runs from ``backend/`` and imports
# ``application.tasks``; ``application/`` has no ``__init__.py`` (an implicit namespace package).
IMPLICIT_NAMESPACE = {
    ".git/HEAD": "",
    "backend/main.py": "from application.worker import celery\nfrom application import tasks\n"
                       "\ndef view():\n    tasks." + CALL,
    "backend/application/worker.py": 'from celery import Celery\ncelery = Celery("grocery")\n',
    "backend/application/tasks.py": "from application.worker import celery\n"
                                    + TASKS.format(app="celery"),
    # Near miss: nobody imports ``scripts.x``; its modules stay top-level.
    "backend/scripts/seed.py": "from application.tasks import add\n\ndef seed():\n    "
                               "add.delay(1, 2)\n",
}


def test_a_directory_the_code_imports_as_a_package_is_one(tmp_path):
    write(tmp_path, IMPLICIT_NAMESPACE)
    assert found(tmp_path) == {(os.path.join("backend", "main.py"), 5, "CCL002")}
    seen = coverage(tmp_path)
    assert (seen.apps, seen.task_like, seen.tasks) == (1, 1, 1)


def test_a_directory_named_like_a_module_elsewhere_is_not_adopted(tmp_path):
    """``application.py`` exists beside: ``from application import tasks`` is ambiguous, and
    the directory's modules keep their names."""
    write(tmp_path, dict(IMPLICIT_NAMESPACE, **{"backend/application.py": "tasks = None\n"}))
    assert found(tmp_path) == set()
    # Not followed, and said so: the decorator is counted, the run warns.
    result = CliRunner().invoke(cli, ["check", ".", "--no-cache"])
    assert "1 function(s) are decorated like Celery tasks but none was recognised" \
        in result.stderr, result.stderr


def test_test_modules_without_init_keep_their_own_names(tmp_path):
    from celery_chain_lint.load.discovery import discover

    write(tmp_path, NAMESPACE_PORTION)
    names = {s.path.replace(os.sep, "/"): s.module for s in discover([str(tmp_path)])}
    by_end = {path.split(str(tmp_path).replace(os.sep, "/") + "/")[-1]: module
              for path, module in names.items()}
    assert by_end["shop/order/migrations/tasks/backfill.py"] == \
        "shop.order.migrations.tasks.backfill"
    assert by_end["shop/order/tests/test_backfill.py"] == "test_backfill"


# ---- Celery's own repository ----

def test_celery_itself_analysed_indexes_the_tasks_of_its_examples(tmp_path):
    write(tmp_path, {
        "setup.py": "",
        "celery/__init__.py": "from celery.app.base import Celery\n"
                              "from celery.app.shared import shared_task\n",
        "celery/app/__init__.py": "",
        "celery/app/base.py": "class Celery:\n    def task(self, *a, **k):\n        pass\n",
        "celery/app/shared.py": "def shared_task(*a, **k):\n    pass\n",
        "celery/canvas.py": "",
        "celery/app/task.py": "",
        "celery/_state.py": "",
        "celery/result.py": "",
        "examples/tutorial/tasks.py": _service("tutorial"),
    })
    assert found(tmp_path) == {
        (os.path.join("examples", "tutorial", "tasks.py"), 9, "CCL002")}
    assert found(tmp_path, "examples") == {
        (os.path.join("examples", "tutorial", "tasks.py"), 9, "CCL002")}


# ---- one file outside any project marker ----

def test_a_file_outside_a_project_is_checked_with_its_neighbours(tmp_path):
    demo = tmp_path / "demo"
    write(demo, {"tasks.py": 'from celery import Celery\napp = Celery("d")\n'
                 + textwrap.dedent(TASKS.format(app="app")),
                 "flows.py": "from tasks import add\n\ndef view():\n    " + CALL})
    if (tmp_path / ".git").exists() or any(
            (parent / marker).exists() for parent in tmp_path.parents
            for marker in ("pyproject.toml", "setup.py", "setup.cfg", ".git", "manage.py")):
        pytest.skip("a project marker above the temporary directory")
    assert found(tmp_path, "demo/flows.py") == {(os.path.join("demo", "flows.py"), 4, "CCL002")}
    result = CliRunner().invoke(cli, ["check", "-", "--stdin-filename", "demo/flows.py",
                                      "--no-cache"], input=(demo / "flows.py").read_text())
    assert result.exit_code == 1 and "CCL002" in result.stdout


# ---- saying what was not seen ----

BLIND = {
    # An extension of a library the analyser does not know (flask-celeryext's is followed).
    "project/__init__.py": "from flask_celery_helper import CeleryExt\n"
                           "ext_celery = CeleryExt()\n",
    "project/tasks.py": "from project import ext_celery\n\n"
                        "@ext_celery.celery.task\ndef add(x, y):\n    return x + y\n\n"
                        "def view():\n    " + CALL,
}


def test_a_blind_run_says_so_on_stderr(tmp_path):
    write(tmp_path, BLIND)
    os.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", ".", "--no-cache"])
    assert result.exit_code == 0
    assert "warning: 1 function(s) are decorated like Celery tasks but none was recognised" \
        in result.stderr
    assert "All checks passed" in result.stdout


def test_a_run_that_saw_everything_warns_of_nothing(tmp_path):
    write(tmp_path, ROOT_INIT)
    os.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", ".", "--no-cache", "--show-coverage"])
    assert result.exit_code == 1 and result.stderr == ""
    assert "Coverage: 1 app, 1 of 1 task-decorated function indexed as tasks, 1 canvas site: " \
           "1 modelled, 0 unknown; 6 files" in result.stdout


# osf.io's ``tasks/__init__.py``: its own ``task`` decorator around invoke's, beside a Celery app.
OWN_INVOKE_TASK = {
    "site/__init__.py": "",
    "site/celery.py": "from celery import Celery\n\napp = Celery('site')\n\n"
                      "@app.task\ndef add(x, y):\n    return x + y\n",
    "tasks/__init__.py": "import invoke\n\n"
                         "def task(*args, **kwargs):\n    return invoke.task(*args, **kwargs)\n\n"
                         "@task\ndef shell(ctx):\n    ctx.run('python')\n",
    # Near miss: a project decorator around Celery's is task-like, and not recognised.
    "jobs/__init__.py": "import invoke\nfrom celery import shared_task\n\n"
                        "def task(*args, **kwargs):\n    return shared_task(*args, **kwargs)\n\n"
                        "@task\ndef ping():\n    return 1\n",
}


def test_a_project_decorator_around_invoke_is_not_counted_as_a_task(tmp_path):
    write(tmp_path, OWN_INVOKE_TASK)
    os.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", ".", "--no-cache", "--show-coverage"])
    coverage = result.stdout.splitlines()[-1]
    # add (indexed) and jobs' ping (task-like, its decorator not followed): not invoke's shell.
    assert "1 of 2 task-decorated functions indexed as tasks" in coverage, result.stdout


def test_another_librarys_task_decorator_is_not_counted_but_one_naming_celery_is(tmp_path):
    write(tmp_path, {
        "jobs/__init__.py": "",
        "jobs/queue.py": "from huey import RedisHuey\nhuey = RedisHuey('jobs')\n\n"
                         "@huey.task()\ndef ping():\n    return 1\n",
        # Near miss: an app of a library wrapping Celery, which the analyser cannot follow.
        "jobs/web.py": "from flask_celery import Celery\ncelery = Celery()\n\n"
                       "@celery.task\ndef pong():\n    return 2\n",
    })
    seen = coverage(tmp_path)
    assert (seen.task_like, seen.tasks) == (1, 0)
    assert seen.unrecognised == {"@celery.task": 1}


def test_the_warning_names_the_module_that_was_not_found(tmp_path):
    """Configured source roots that name the modules otherwise than the code imports them:
    the warning names the import and the file, and the setting that fixes it."""
    write(tmp_path, ROOT_INIT)
    os.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.celery-chain-lint]\nsrc = [".."]\n')
    result = CliRunner().invoke(cli, ["check", ".", "--no-cache"])
    assert "the code imports `main.celery`" in result.stderr
    assert "set `src = [...]`" in result.stderr


def test_coverage_in_json_and_sarif(tmp_path):
    write(tmp_path, ROOT_INIT)
    os.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", ".", "--no-cache", "--format", "json",
                                      "--show-coverage"])
    assert len(json.loads(result.stdout)) == 1  # the array, as the contract says
    (seen,) = json.loads(result.stderr)["coverage"]
    assert (seen["apps"], seen["tasks_indexed"], seen["canvas_sites_modelled"]) == (1, 1, 1)
    sarif = json.loads(CliRunner().invoke(cli, ["check", ".", "--no-cache", "--format",
                                                "sarif"]).stdout)
    assert sarif["runs"][0]["properties"]["coverage"][0]["tasks_indexed"] == 1


# ---- the nearest configuration of each file ----

def test_each_file_takes_its_nearest_configuration(tmp_path):
    """``a/`` ignores CCL002 in its own pyproject.toml, ``b/`` has none: as ruff, whatever the
    paths given."""
    write(tmp_path, {"a/pyproject.toml": '[tool.celery-chain-lint]\nignore = ["CCL002"]\n',
                     "a/tasks_a.py": _service("a"), "b/tasks_b.py": _service("b")})
    os.chdir(tmp_path)

    def reported(*args):
        result = CliRunner().invoke(cli, ["check", *args, "--no-cache", "--format", "json"])
        return {(f["path"], f["code"]) for f in json.loads(result.stdout)}

    only_b = {(os.path.join("b", "tasks_b.py"), "CCL002")}
    assert reported(".") == only_b
    assert reported("a", "b") == only_b
    assert reported("a/tasks_a.py", "b") == only_b
    os.chdir(tmp_path)
    named = CliRunner().invoke(cli, ["check", ".", "--no-cache", "--config",
                                     "a/pyproject.toml"])
    assert "CCL002" not in named.stdout  # one configuration named: it applies to every file
    flags = CliRunner().invoke(cli, ["check", ".", "--no-cache", "--select", "CCL001"])
    assert flags.exit_code == 0  # the flags apply on top of every file's configuration


# ---- a property: how a tree is given does not change what is found ----

@st.composite
def trees(draw):
    """Small repositories of the shapes above: services side by side (sharing module names or
    not), each an app, its tasks and a module calling them rightly or wrongly; a root
    ``__init__.py`` or not; a project marker or not."""
    files: Dict[str, str] = {}
    if draw(st.booleans()):
        files["__init__.py"] = ""
    if draw(st.booleans()):
        files["setup.cfg"] = ""
    for service in draw(st.lists(st.sampled_from(["a", "b", "svc/c"]), min_size=1, max_size=3,
                                 unique=True)):
        package = draw(st.booleans())
        app_module = draw(st.sampled_from(["celery_app", "worker"]))
        prefix = f"{service}/" + ("pkg/" if package else "")
        module = "pkg." if package else ""
        if package:
            files[f"{service}/pkg/__init__.py"] = ""
        files[prefix + f"{app_module}.py"] = 'from celery import Celery\napp = Celery("s")\n'
        files[prefix + "tasks.py"] = (f"from {module}{app_module} import app\n"
                                      + TASKS.format(app="app"))
        arguments = draw(st.sampled_from(["1", "1, 2", "1, 2, 3"]))
        files[prefix + "flows.py"] = (f"from {module}tasks import add\n\ndef view():\n"
                                      f"    add.delay({arguments})\n")
    return files


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=trees())
def test_a_tree_checked_whole_by_file_and_through_the_cache_gives_the_same_findings(
        tmp_path_factory, files):
    root = tmp_path_factory.mktemp("tree")
    write(root, files)
    whole = found(root)
    python_files = sorted(name for name in files if name.endswith(".py"))
    one_by_one = set().union(*(found(root, name) for name in python_files))
    assert one_by_one == whole
    cache = str(root / ".cache")
    os.chdir(root)
    for _ in range(2):  # the run that fills the cache, then the one that reads it
        report = engine.check(["."], Settings(cache_dir=cache), jobs=1)
        assert {(f.path, f.span.line, f.code) for f in report.findings} == whole


def test_another_librarys_task_decorator_is_not_counted(tmp_path):
    """``from invoke import task``: spelled as Celery's, resolved elsewhere: no warning."""
    write(tmp_path, {"tasks.py": "from invoke import task\n\n@task\ndef build(c):\n    pass\n"})
    os.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", ".", "--no-cache", "--show-coverage"])
    assert result.exit_code == 0 and result.stderr == ""
    assert "0 of 0 task-decorated functions" in result.stdout


def test_the_warning_names_the_decorators_it_could_not_follow(tmp_path):
    write(tmp_path, BLIND)
    os.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", ".", "--no-cache"])
    assert "`@ext_celery.celery.task` (1)" in result.stderr


# ---- apps whose class is loaded at run time, or a subclass of Celery's ----

LOADED_APP = {
    "proj/__init__.py": "",
    "proj/celery.py": """
        from django.utils.module_loading import import_string

        celery_class = import_string("proj.apps.CeleryApp")
        app = celery_class(main="proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """,
    "proj/tasks.py": "from celery import chord\nfrom proj.celery import app\n"
                     + TASKS.format(app="app") + "\ndef view():\n    " + CALL,
}


def test_an_app_whose_class_is_loaded_at_run_time_is_known_by_its_calls(tmp_path):
    """Mayan EDMS's layout: ``import_string(setting)(main=...)``; only an app is asked
    ``config_from_object``. Its configuration is not known: a chord there is no CCL008."""
    write(tmp_path, LOADED_APP)
    assert found(tmp_path) == {(os.path.join("proj", "tasks.py"), 9, "CCL002")}
    files = dict(LOADED_APP)
    files["proj/tasks.py"] = files["proj/tasks.py"].replace(
        CALL, "chord([add.s(1, 2)], add.s(3)).delay()\n")
    write(tmp_path, files)
    assert found(tmp_path) == set()


def test_an_object_made_at_run_time_and_asked_nothing_of_an_app_is_no_app(tmp_path):
    files = dict(LOADED_APP)
    files["proj/celery.py"] = files["proj/celery.py"].replace(
        'app.config_from_object("django.conf:settings", namespace="CELERY")\n', "").replace(
        "app.autodiscover_tasks()\n", "app.start()\n")
    write(tmp_path, files)
    assert found(tmp_path) == set()


SUBCLASS = {
    "proj/__init__.py": "",
    "proj/core.py": "from celery import Celery\n\nclass ProjCelery(Celery):\n"
                    "    def on_init(self):\n        pass\n",
    "proj/app.py": "from proj.core import ProjCelery\n\ncelery = ProjCelery('proj')\n",
    "proj/tasks.py": "from proj.app import celery\n" + TASKS.format(app="celery")
                     + "\ndef view():\n    " + CALL,
}


def test_an_app_of_a_subclass_of_celery(tmp_path):
    """Indico's layout: ``class IndicoCelery(Celery)``, ``celery = IndicoCelery('indico')``."""
    write(tmp_path, SUBCLASS)
    assert found(tmp_path) == {(os.path.join("proj", "tasks.py"), 8, "CCL002")}


def test_a_subclass_with_its_own_task_decorator_leaves_the_arguments_unknown(tmp_path):
    """Its ``task`` may change what a task takes: indexed, but its arguments are not checked."""
    files = dict(SUBCLASS)
    files["proj/core.py"] += ("\n    def task(self, *args, **kwargs):\n"
                              "        return super().task(*args, **kwargs)\n")
    write(tmp_path, files)
    assert found(tmp_path) == set()
    assert coverage(tmp_path).tasks == 1


# ---- an app's settings written under a module-level ``if`` (taiga-back's celery.py) ----

CONDITIONAL_SETTINGS = {
    "proj/__init__.py": "",
    "proj/celery.py": """
        import os
        from celery import Celery

        app = Celery("proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")

        if os.environ.get("TELEMETRY"):
            app.conf.beat_schedule["telemetry"] = {"task": "proj.tasks.add", "args": ()}
        if os.environ.get("BULK"):
            app.conf.beat_schedule["bulk"] = {"task": "proj.tasks.add", "args": ()}
            app.conf.task_routes += [{"proj.tasks.add": "bulk"}]
    """,
    "proj/tasks.py": "from proj.celery import app\n" + TASKS.format(app="app")
                     + "\ndef view():\n    " + CALL,
}


def test_writing_an_apps_settings_under_an_if_keeps_the_app(tmp_path):
    """The write changes what the app holds, not which object ``app`` is: 0 of 22 tasks were
    indexed on taiga-back before."""
    write(tmp_path, CONDITIONAL_SETTINGS)
    assert found(tmp_path) == {(os.path.join("proj", "tasks.py"), 8, "CCL002")}
    seen = coverage(tmp_path)
    assert (seen.apps, seen.task_like, seen.tasks) == (1, 1, 1)


@pytest.mark.parametrize("rebinding", [
    'app = Celery("other")',  # rebound under the if: which app is unknown
    'app = Scheduler()',  # another library's object with a ``task`` method
])
def test_an_app_rebound_under_an_if_is_still_unknown(tmp_path, rebinding):
    files = dict(CONDITIONAL_SETTINGS)
    files["proj/celery.py"] = files["proj/celery.py"].replace(
        'app.conf.beat_schedule["bulk"]', rebinding + '\n            app.conf.beat_schedule["bulk"]'
    ).replace("from celery import Celery", "from celery import Celery\n        "
              "from huey import RedisHuey as Scheduler")
    write(tmp_path, files)
    assert found(tmp_path) == set()
    assert coverage(tmp_path).tasks == 0


def test_an_item_written_into_a_module_level_signature_under_an_if_makes_it_unknown(tmp_path):
    """The near miss: a signature is a dict, ``FLOW["args"] = ...`` changes its arguments, so
    its value is no longer known (without the ``if``, the write is not followed either)."""
    write(tmp_path, {
        "proj/__init__.py": "",
        "proj/tasks.py": "import os\nfrom celery import shared_task\n\n"
                         "@shared_task\ndef add(x, y):\n    return x + y\n\n"
                         "FLOW = add.s(1)\nif os.environ.get('X'):\n"
                         "    FLOW[\"args\"] = (1, 2)\n\n"
                         "def go():\n    FLOW.delay()\n",
    })
    assert found(tmp_path) == set()


# ---- Flask's make_celery recipe setting the app's task class (lemur, neurostore) ----

CONTEXT_TASK = {
    "web/__init__.py": "",
    "web/celery.py": """
        from celery import Celery
        from django.db import transaction
        from flask import Flask

        flask_app = Flask(__name__)


        def make_celery(app):
            celery = Celery(app.import_name, backend=app.config.get("CELERY_RESULT_BACKEND"))
            celery.conf.update(app.config)
            TaskBase = celery.Task

            class ContextTask(TaskBase):
                abstract = True

                def __call__(self, *args, **kwargs):
                    with app.app_context():
                        return TaskBase.__call__(self, *args, **kwargs)

            celery.Task = ContextTask
            return celery


        celery_app = make_celery(flask_app)
    """,
    "web/tasks.py": "from django.db import transaction\nfrom web.celery import celery_app\n"
                    + TASKS.format(app="celery_app") + "\ndef view():\n    " + CALL
                    + "\ndef save():\n    with transaction.atomic():\n"
                      "        add.delay(1, 2)\n",
}


def test_an_app_whose_factory_sets_its_task_class_is_followed(tmp_path):
    """``celery.Task = ContextTask`` before ``return celery`` (the recipe of Flask's old
    documentation): lemur's 24 tasks and neurostore's 3 were not indexed. The class it sets
    may send tasks its own way (as ``task_cls=``): no CCL017 in ``save``."""
    write(tmp_path, CONTEXT_TASK)
    assert found(tmp_path) == {(os.path.join("web", "tasks.py"), 9, "CCL002")}
    seen = coverage(tmp_path)
    assert (seen.apps, seen.task_like, seen.tasks) == (1, 1, 1)


def test_a_factory_app_without_its_task_class_set_is_still_checked_by_ccl017(tmp_path):
    files = dict(CONTEXT_TASK)
    files["web/celery.py"] = files["web/celery.py"].replace(
        "celery.Task = ContextTask", "celery.name = 'web'")
    write(tmp_path, files)
    assert found(tmp_path) == {(os.path.join("web", "tasks.py"), 9, "CCL002"),
                               (os.path.join("web", "tasks.py"), 13, "CCL017")}


def test_another_librarys_object_with_attributes_written_is_no_app(tmp_path):
    """The near miss: huey's app made and changed the same way; ``@huey.task`` is huey's."""
    files = dict(CONTEXT_TASK)
    files["web/celery.py"] = files["web/celery.py"].replace(
        "from celery import Celery", "from huey import RedisHuey as Celery")
    write(tmp_path, files)
    assert found(tmp_path) == set()
    seen = coverage(tmp_path)
    # Counted as decorated like a task and not followed: a project factory's object is
    # not known not to be an app.
    assert (seen.apps, seen.tasks) == (0, 0)


def test_a_signature_whose_attributes_are_written_is_unknown(tmp_path):
    """The near miss on signatures: ``sig.immutable = True`` changes what it passes on, so a
    local signature changed that way is not modelled (no CCL001 on the immutable link)."""
    write(tmp_path, {
        "proj/__init__.py": "",
        "proj/tasks.py": "from celery import shared_task, chain\n\n"
                         "@shared_task\ndef add(x, y):\n    return x + y\n\n"
                         "@shared_task\ndef ping():\n    return 1\n\n"
                         "def go():\n    last = ping.s()\n    last.immutable = True\n"
                         "    chain(add.s(1, 2), last).delay()\n",
    })
    assert found(tmp_path) == set()


# ---- tasks sent from a lambda (Django's transaction.on_commit; kpi, nautobot, taiga) ----

ON_COMMIT = {
    "proj/__init__.py": "",
    "proj/tasks.py": """
        import itertools

        from celery import chain, shared_task
        from django.db import transaction


        @shared_task
        def add(x, y):
            return x + y


        @shared_task
        def log_done(message):
            return message


        class Timer:
            def delay(self, seconds):
                return seconds


        def save(pk):
            with transaction.atomic():
                transaction.on_commit(lambda: add.delay(pk))
                transaction.on_commit(lambda: chain(add.s(1, 2), log_done.s("done")).delay())
                transaction.on_commit(lambda: add.delay(pk, 2))


        def near_misses(rows, sig):
            transaction.on_commit(lambda add: add.delay(1))  # its parameter, not the task
            transaction.on_commit(lambda: sig.delay())  # a parameter
            transaction.on_commit(lambda: Timer().delay(1))  # another class's delay
            later = add.s(1)
            transaction.on_commit(lambda: later.delay())  # read when it runs: rebound below
            later = add.s(1, 2)
            return sorted(rows, key=lambda row: list(itertools.chain(row, [1])))
    """,
}


def test_a_task_sent_from_a_lambda_is_checked(tmp_path):
    """The lambda's body is modelled as the enclosing function's; it is not sent inside the
    ``with transaction.atomic()`` around it (no CCL017): it runs after the commit."""
    write(tmp_path, ON_COMMIT)
    path = os.path.join("proj", "tasks.py")
    assert found(tmp_path) == {(path, 25, "CCL002"), (path, 26, "CCL001")}
    seen = coverage(tmp_path)
    assert (seen.sites, seen.modelled) == (11, 6)
    from projects import findings
    assert findings(["."], True, tmp_path)[0] == findings(["."], False, tmp_path)[0]


# ---- what the coverage counts as decorated like a task (nautobot, treeherder, osf.io) ----

WRAPPERS = {
    "proj/__init__.py": "",
    "proj/celery.py": "from celery import Celery, shared_task\n\napp = Celery('proj')\n"
                      "nautobot_task = shared_task\n",
    # treeherder's workers/task.py: a class whose instances wrap Celery's decorator.
    "proj/retry.py": """
        from functools import wraps

        from celery import shared_task


        class retryable_task:
            def __init__(self, *args, **kwargs):
                self.task_args = args
                self.task_kwargs = kwargs

            def __call__(self, f):
                @wraps(f)
                def inner(*args, **kwargs):
                    return f(*args, **kwargs)

                task_func = shared_task(*self.task_args, **self.task_kwargs)(inner)
                return task_func
    """,
    # A class whose instances make a plain function that sends a task: not followed.
    "proj/lazy.py": "from celery import shared_task\n\nclass lazy_task:\n"
                    "    def __call__(self, f):\n        def run(*args, **kwargs):\n"
                    "            return shared_task(f).delay(*args, **kwargs)\n"
                    "        return run\n",
    # Near misses for treeherder's shape: a class timing a function, a class wrapping huey's.
    "proj/timing.py": "import time\nfrom functools import wraps\n\nclass timed_task:\n"
                      "    def __call__(self, f):\n        @wraps(f)\n"
                      "        def inner(*args, **kwargs):\n            start = time.time()\n"
                      "            return f(*args, **kwargs)\n        return inner\n",
    "proj/hueyed.py": "from huey import RedisHuey\n\nhuey = RedisHuey('proj')\n\n"
                      "class huey_task:\n    def __call__(self, f):\n"
                      "        return huey.task()(f)\n",
    "proj/queue.py": "import functools\n\ndef queued_task(task):\n"
                     "    @functools.wraps(task)\n    def wrapped(*args, **kwargs):\n"
                     "        task.si(*args, **kwargs).delay()\n    return wrapped\n",
    "proj/helpers.py": "def cached_task(fn):\n    return fn\n",
    "proj/jobs.py": "import dramatiq\n\ndef queue_task(fn):\n    return dramatiq.actor(fn)\n",
    "proj/tasks.py": """
        from huey.contrib.djhuey import db_task

        from proj import celery
        from proj.celery import app, nautobot_task
        from proj.helpers import cached_task
        from proj.jobs import queue_task
        from proj.queue import queued_task
        from proj.hueyed import huey_task
        from proj.lazy import lazy_task
        from proj.retry import retryable_task
        from proj.timing import timed_task


        @nautobot_task
        def add(x, y):
            return x + y


        @celery.nautobot_task(bind=True)
        def scale(self, value, factor):
            return value * factor


        @retryable_task(name="store", max_retries=10)
        def store(pk):
            return add.delay(pk, 1).get()


        @lazy_task()
        def lazy(pk):
            return pk


        @timed_task()
        def timed(pk):
            return pk


        @huey_task()
        def hueyed(pk):
            return pk


        @queued_task
        @app.task
        def subscribe(pk):
            return pk


        @cached_task
        def compute():
            return 1


        @queue_task
        def other_queue():
            return 1


        @db_task()
        def huey_task():
            return 1


        def view():
            add.delay(1)
    """,
}


def test_tasks_under_any_decorator_name_and_wrappers_of_celerys_are_counted(tmp_path):
    """Indexed under an alias (``nautobot_task = shared_task``): counted (they were not: 0 of
    0 on nautobot); an instance of a project class whose ``__call__`` returns ``shared_task``
    applied to a wrapper of the function (treeherder's ``retryable_task``): a task, its options
    and so its arguments unknown (CCL006 on its ``.get()``); a project class wrapping it
    otherwise: counted, not indexed, named in the warning. Not counted: a decorator over a task
    (``queued_task``, a plain function), a helper that happens to end in ``_task``, another
    queue's decorator (a project's around dramatiq's or huey's, huey's ``db_task``), a class
    timing a function."""
    write(tmp_path, WRAPPERS)
    path = os.path.join("proj", "tasks.py")
    assert found(tmp_path) == {(path, 27, "CCL006"), (path, 67, "CCL002")}
    seen = coverage(tmp_path)
    # add, scale and store (indexed), lazy (not followed); not subscribe, a plain function.
    assert (seen.task_like, seen.tasks) == (4, 3)
    assert seen.unrecognised == {"@lazy_task": 1}
    from projects import findings
    assert findings(["."], True, tmp_path)[0] == findings(["."], False, tmp_path)[0]


# ---- app.task(fn) as a bare statement ----

BARE_APPLIED = {
    "proj/__init__.py": "",
    "proj/impl.py": "def fetch(url, timeout):\n    return url\n",
    "proj/celery.py": """
        from huey import RedisHuey
        from proj.impl import fetch

        from celery import Celery

        app = Celery("proj", broker="redis://127.0.0.1:6379/0")
        huey = RedisHuey("proj")
        app.task(fetch)
        app.task(name="proj.renamed")(fetch)
        huey.task(name="proj.huey")(fetch)


        def go():
            app.send_task("proj.impl.fetch", args=("u",))
            app.send_task("proj.renamed", args=("u", 1, 2))
            app.send_task("proj.impl.fetch", args=("u", 1))
            app.send_task("proj.huey", args=("u",))
            fetch.delay("u", 1)
    """,
}


def test_a_task_made_by_a_bare_app_task_call_is_registered_by_name(tmp_path):
    """``app.task(fetch)`` as a statement registers ``proj.impl.fetch`` (its value unused):
    ``send_task`` by that name is checked. The near misses: huey's ``task`` registers nothing
    Celery knows (``proj.huey``: not checked), and ``fetch`` itself stays a plain function
    (CCL015 on ``fetch.delay``, an AttributeError)."""
    write(tmp_path, BARE_APPLIED)
    path = os.path.join("proj", "celery.py")
    assert found(tmp_path) == {(path, 15, "CCL002"), (path, 16, "CCL002"), (path, 19, "CCL015")}
    from projects import findings
    assert findings(["."], True, tmp_path)[0] == findings(["."], False, tmp_path)[0]


# ---- Celery(...) written in the Flask factory, or in a helper storing it ----

MADE_IN_FACTORY = """
from celery import Celery, Task
from flask import Flask


def init_app(app):
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    app.extensions["celery"] = celery_app


def create_app():
    app = Flask(__name__)
    STORE
    return app
"""


@pytest.mark.parametrize("store", [
    'app.extensions["celery"] = Celery(app.name, backend="rpc://")',
    "init_app(app)",  # a helper that stores the app it makes and returns nothing
])
def test_an_app_made_in_the_flask_factory_is_followed(tmp_path, store):
    """Its configuration is not read (what the factory writes next would win over a keyword):
    no CCL008 on the chord, even with ``backend="rpc://"`` written."""
    write(tmp_path, {
        "web/__init__.py": MADE_IN_FACTORY.replace("STORE", store),
        "web/tasks.py": _flask_tasks('flask_app.extensions["celery"]')["web/tasks.py"],
    })
    assert found(tmp_path) == {(os.path.join("web", "tasks.py"), 12, "CCL002")}
    assert coverage(tmp_path).tasks == 1


@pytest.mark.parametrize("store", [
    # Two different apps under one key: which one the tasks see is not known.
    'app.extensions["celery"] = Celery(app.name)\n    init_app(app)',
    # Another library's object stored under the key.
    'app.extensions["celery"] = Huey(app.name)',
    # Stored under another key.
    'app.extensions["queue"] = Celery(app.name)',
])
def test_what_else_a_flask_factory_makes_is_not_taken_for_the_app(tmp_path, store):
    write(tmp_path, {
        "web/__init__.py": MADE_IN_FACTORY.replace("STORE", store).replace(
            "from flask import Flask", "from flask import Flask\nfrom huey import RedisHuey as Huey"),
        "web/tasks.py": _flask_tasks('flask_app.extensions["celery"]')["web/tasks.py"],
    })
    assert found(tmp_path) == set()
    assert coverage(tmp_path).tasks == 0


# ---- the app of flask-celeryext (ext = FlaskCeleryExt(app), then ext.celery) ----

CELERYEXT = {
    "web/__init__.py": "from flask import Flask\nfrom flask_celeryext import FlaskCeleryExt\n\n"
                       "flask_app = Flask(__name__)\next_celery = FlaskCeleryExt(flask_app)\n"
                       "celery_app = ext_celery.celery\n",
    "web/tasks.py": """
        from celery import chord
        from django.db import transaction
        from web import celery_app, ext_celery


        @celery_app.task
        def add(x, y):
            return x + y


        @ext_celery.celery.task(bind=True)
        def mul(self, x, y):
            return x * y


        @ext_celery.task  # the extension has no task decorator: AttributeError at import
        def other(x):
            return x


        def view():
            add.delay(1)
            mul.delay(1, 2, 3)
            chord([add.s(1, 2)], add.s(3)).delay()
            with transaction.atomic():
                add.delay(1, 2)
    """,
}


def test_the_app_of_flask_celeryext_is_followed(tmp_path):
    """neurostore's former layout. Its configuration comes from the Flask config and its task
    class is flask-celeryext's (the classic recipe): no CCL008, no CCL017."""
    write(tmp_path, CELERYEXT)
    path = os.path.join("web", "tasks.py")
    assert found(tmp_path) == {(path, 23, "CCL002"), (path, 24, "CCL002")}
    seen = coverage(tmp_path)
    assert (seen.apps, seen.task_like, seen.tasks) == (1, 3, 2)
    assert seen.unrecognised == {"@ext_celery.task": 1}
    from projects import findings
    assert findings(["."], True, tmp_path)[0] == findings(["."], False, tmp_path)[0]


def test_another_extension_keeping_an_attribute_named_celery_is_not_followed(tmp_path):
    """The near miss: a Flask extension of another library (or of the project) whose
    ``celery`` attribute the analyser cannot know."""
    files = dict(CELERYEXT)
    files["web/__init__.py"] = files["web/__init__.py"].replace(
        "from flask_celeryext import FlaskCeleryExt", "from flask_other import FlaskCeleryExt")
    write(tmp_path, files)
    assert found(tmp_path) == set()
    assert coverage(tmp_path).tasks == 0


def test_a_task_kept_as_a_static_method_is_counted_as_not_followed(tmp_path):
    """pretix's ``@staticmethod`` over ``@app.task`` in a class body: Celery registers it, the
    index does not follow tasks in classes; the coverage now says so. Near misses: a static
    method alone, or over another decorator."""
    write(tmp_path, {
        "proj/__init__.py": "",
        "proj/steps.py": "import functools\nfrom celery import shared_task\n\n"
                         "class Step:\n    @staticmethod\n    @shared_task\n"
                         "    def refresh(pk):\n        return pk\n\n"
                         "    @staticmethod\n    def plain(pk):\n        return pk\n\n"
                         "    @staticmethod\n    @functools.cache\n"
                         "    def cached(pk):\n        return pk\n",
    })
    seen = coverage(tmp_path)
    assert (seen.task_like, seen.tasks) == (1, 0)
    assert seen.unrecognised == {"@shared_task": 1}


# bookwyrm's tests: ``with ThreadPoolExecutor(...) as pool: pool.map(...)`` is no canvas site.
EXECUTOR_MAP = {
    "shop/__init__.py": "",
    "shop/tasks.py": "from celery import Celery, group\napp = Celery('shop')\n"
                     + TASKS.format(app="app") + "\n\ndef make():\n    return add.s(1, 2)\n"
                     "\n\ndef patch():\n    class Wrapped(app.Task):\n"
                     "        def apply_async(self, args=None, **kw):\n"
                     "            return super().apply_async(args, **kw)\n",
    "shop/jobs.py": textwrap.dedent("""\
        from concurrent.futures import ThreadPoolExecutor
        from multiprocessing import Pool
        from celery import group
        from shop.tasks import add, make

        def run(tasks):
            with ThreadPoolExecutor(max_workers=10) as pool:
                list(pool.map(print, range(10)))
            Pool(4).map(print, range(3))
            # Near misses, still canvas sites: Celery's own calls, the project's.
            group(*tasks).apply_async()
            make().delay()
            add.map([(1, 2)])
        """),
}


def test_another_librarys_pool_map_is_no_canvas_site(tmp_path):
    write(tmp_path, EXECUTOR_MAP)
    seen = coverage(tmp_path)
    # add.s() in make(), add.map(), the two dynamic ones and super().apply_async() (indico's
    # Task subclass): the pools' map() were 2 more.
    assert (seen.sites, seen.modelled) == (5, 2), seen
    assert seen.unknown == {"dynamic construction": 2, "splat": 1}, seen.unknown
