"""What the app index reads of each Celery app's configuration (celery_chain_lint/index/apps.py).

The precedence modelled here was observed on Celery 5.7.0: ``app.conf.x = ...``,
``app.conf.update(...)`` and ``Celery(...)`` keywords win over ``config_from_object``, whatever
the statement order; ``Celery(backend=...)`` wins over a ``result_backend`` in the object.
"""
from __future__ import annotations

import pytest

from projects import findings, make_project, write

from celery_chain_lint.index.apps import ABSENT, LITERAL, UNKNOWN


def _config(tmp_path, files, module="proj.celery"):
    project = make_project(tmp_path, files)
    apps = [app for app in project.apps.apps() if app.module == module]
    assert len(apps) == 1, project.apps.apps()
    return project.apps.config(apps[0]), project


def test_backend_keyword_and_defaults(tmp_path):
    config, _ = _config(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery
            app = Celery("proj", broker="redis://", backend="redis://localhost/1")
        """,
    })
    assert (config.backend.state, config.backend.value) == (LITERAL, "redis://localhost/1")
    assert config.backend_kind() == "configured"
    assert config.ignore_result.state == ABSENT
    assert (config.serializer.state, config.serializer.value) == (ABSENT, "json")


def test_no_backend_and_rpc(tmp_path):
    config, _ = _config(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery
            app = Celery("proj", broker="redis://")
        """,
    })
    assert config.backend_kind() == "none"
    config, _ = _config(tmp_path / "b", {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery
            app = Celery("proj", broker="redis://")
            app.conf.update(result_backend="rpc://", task_serializer="pickle")
            app.conf.task_ignore_result = True
        """,
    })
    assert config.backend_kind() == "rpc"
    assert config.serializer.value == "pickle"
    assert (config.ignore_result.state, config.ignore_result.value) == (LITERAL, True)


def test_environment_makes_a_setting_unknown(tmp_path):
    config, _ = _config(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": """
            import os
            from celery import Celery
            app = Celery("proj", backend=os.environ["BACKEND"])
            app.conf.task_serializer = os.getenv("SERIALIZER", "json")
        """,
    })
    assert config.backend.state == UNKNOWN and config.backend_kind() == "unknown"
    assert config.serializer.state == UNKNOWN


def test_conf_writes_win_over_config_from_object(tmp_path):
    config, _ = _config(tmp_path, {
        "proj/__init__.py": "",
        "proj/celeryconfig.py": """
            result_backend = "cache+memory://"
            task_serializer = "yaml"
        """,
        "proj/celery.py": """
            from celery import Celery
            app = Celery("proj")
            app.conf.result_backend = "redis://localhost/2"
            app.config_from_object("proj.celeryconfig")
        """,
    })
    assert config.backend.value == "redis://localhost/2"
    assert config.serializer.value == "yaml"
    assert config.serializer.origin.endswith("celeryconfig.py:3")


def test_config_class_and_unreadable_source(tmp_path):
    config, _ = _config(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery

            class Config:
                result_backend = "db+sqlite:///results.db"

            app = Celery("proj")
            app.config_from_object(Config)
        """,
    })
    assert config.backend.value == "db+sqlite:///results.db"
    config, _ = _config(tmp_path / "b", {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery
            app = Celery("proj", backend="redis://localhost/1")
            app.config_from_object("somewhere.not_analysed")
        """,
    })
    # The unreadable object may set anything, except what Celery(...) keywords override.
    assert config.backend.value == "redis://localhost/1"
    assert config.ignore_result.state == UNKNOWN


def test_django_settings_with_namespace_and_star_imports(tmp_path):
    files = {
        "site/__init__.py": "",
        "site/celery.py": """
            import os
            from celery import Celery
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site.settings.prod")
            app = Celery("site")
            app.config_from_object("django.conf:settings", namespace="CELERY")
        """,
        "site/settings/__init__.py": "",
        "site/settings/base.py": """
            CELERY_RESULT_BACKEND = "django-db"
            CELERY_TASK_IGNORE_RESULT = True
            result_backend = "not read: the namespace is CELERY"
        """,
        "site/settings/prod.py": "from .base import *\n",
    }
    config, _ = _config(tmp_path, files, module="site.celery")
    assert config.backend.value == "django-db"
    assert config.ignore_result.value is True
    files["site/settings/base.py"] = "DEBUG = False\n"
    config, _ = _config(tmp_path / "b", files, module="site.celery")
    assert config.backend_kind() == "none"
    files["site/settings/base.py"] = "import os\nCELERY_RESULT_BACKEND = os.environ.get('B')\n"
    config, _ = _config(tmp_path / "c", files, module="site.celery")
    assert config.backend_kind() == "unknown"


def test_configuration_inside_a_function_is_unknown(tmp_path):
    config, _ = _config(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery
            app = Celery("proj")

            def configure(url):
                app.conf.update(result_backend=url)
        """,
    })
    assert config.backend.state == UNKNOWN


def test_a_setting_written_inside_a_function_is_unknown(tmp_path):
    """``app.conf.result_backend = url`` in ``configure()`` (or a Django ``AppConfig.ready``):
    the function may run before the chord is applied, so the app's backend is not absent."""
    config, _ = _config(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery
            app = Celery("proj")
        """,
        "proj/setup.py": """
            from proj.celery import app

            def configure(url):
                app.conf.result_backend = url

            class Settings:
                def apply(self, other):
                    other.conf.result_backend = "redis://"  # another app, unknown
        """,
    })
    assert config.backend.state == UNKNOWN


def test_a_setting_written_at_module_level_stays_known(tmp_path):
    config, _ = _config(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery
            app = Celery("proj")
            app.conf.result_backend = "redis://localhost/1"

            def describe():
                return app.conf.result_backend
        """,
    })
    assert config.backend.state == LITERAL


def test_shared_task_app_only_when_the_project_has_one(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": "from celery import Celery\napp = Celery('proj')\n",
        "proj/tasks.py": "from celery import shared_task\n\n@shared_task\ndef add(x, y):\n"
                         "    return x + y\n",
    }
    project = make_project(tmp_path, files)
    task = next(t for t in project.all_tasks if t.display == "add")
    assert project.apps.app_of_task(task) is project.apps.apps()[0]
    files["other/__init__.py"] = ""
    files["other/celery.py"] = "from celery import Celery\napp = Celery('other')\n"
    project = make_project(tmp_path / "b", files)
    task = next(t for t in project.all_tasks if t.display == "add")
    assert project.apps.app_of_task(task) is None


def test_celery_reads_a_setting_written_as_an_item_as_the_attribute():
    """What the index assumes of ``app.conf["result_backend"] = ...`` (CCL008), checked on
    Celery itself: the item and the attribute are one setting, and the app's backend uses it."""
    from celery import Celery

    app = Celery("items", broker="memory://")
    app.conf["result_backend"] = "cache+memory://"
    assert app.conf.result_backend == "cache+memory://"
    assert type(app.backend).__name__ == "CacheBackend"


def test_celery_sends_through_the_task_class_apply_async():
    """What CCL017 assumes when it stays silent, checked on Celery itself: ``delay`` goes
    through the task class's ``apply_async`` (a base class defining it decides how a task is
    sent), and an app made with ``task_cls=`` gives that class to its ``@shared_task`` tasks.
    In a child process: a shared task would join every app this one makes later."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        from celery import Celery, Task, shared_task

        sent = []

        class AfterCommit(Task):
            def apply_async(self, args=None, kwargs=None, **options):
                sent.append((self.name, args))  # as a TransactionAwareTask defers it

        app = Celery("deferring", broker="memory://", task_cls=AfterCommit)

        @shared_task
        def notify(order_id):
            return order_id

        @app.task
        def charge(order_id):
            return order_id

        notify.delay(1)
        charge.delay(2)
        assert isinstance(app.tasks[notify.name], AfterCommit)
        assert sent == [(notify.name, (1,)), (charge.name, (2,))], sent
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


# ---- issue 16: the Django settings of a host project outside the tree ----

PLUGIN_TASKS = """
    from celery import chord, shared_task

    @shared_task
    def fetch(x):
        return x

    @shared_task
    def merge(values):
        return values

    def run():
        return chord([fetch.s(1), fetch.s(2)], merge.s()).delay()
"""


def test_django_settings_beside_the_app_are_read_when_nothing_names_them(tmp_path):
    config, _ = _config(tmp_path, {
        "site/__init__.py": "",
        "site/celery.py": """
            from celery import Celery
            app = Celery("site")
            app.config_from_object("django.conf:settings", namespace="CELERY")
        """,
        "site/settings.py": "DEBUG = False\n",
    }, module="site.celery")
    assert config.backend_kind() == "none"  # the project's settings, read: no backend


def test_a_plugins_own_settings_are_not_the_hosts_django_settings(tmp_path):
    """A reusable Django app ships ``settings.py`` with its own defaults; the host project's
    settings (DJANGO_SETTINGS_MODULE) are outside the tree: the backend is unknown, and CCL008
    says nothing (it guessed the plugin's settings, with no backend, and reported)."""
    from projects import findings, write

    plugin = {
        "pyproject.toml": "",
        "myplugin/__init__.py": "",
        "myplugin/settings.py": """
            from django.conf import settings

            PAGE_SIZE = getattr(settings, "MYPLUGIN_PAGE_SIZE", 20)
        """,
        "myplugin/tasks.py": PLUGIN_TASKS,
        "example/__init__.py": "",
        "example/celery.py": """
            from celery import Celery
            app = Celery("example")
            app.config_from_object("django.conf:settings", namespace="CELERY")
        """,
    }
    config, _ = _config(tmp_path / "a", plugin, module="example.celery")
    assert config.backend_kind() == "unknown"
    write(tmp_path / "a", plugin)
    assert findings(["."], True, tmp_path / "a")[0] == []
    # Beside the app but reading django.conf.settings: a plugin's defaults, not the settings.
    beside = dict(plugin)
    beside["example/settings.py"] = plugin["myplugin/settings.py"]
    del beside["myplugin/settings.py"]
    config, _ = _config(tmp_path / "b", beside, module="example.celery")
    assert config.backend_kind() == "unknown"
    # Named by DJANGO_SETTINGS_MODULE, but not in the tree: unknown too.
    named = dict(plugin)
    named["example/celery.py"] = """
        import os
        from celery import Celery
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostsite.settings")
        app = Celery("example")
        app.config_from_object("django.conf:settings", namespace="CELERY")
    """
    config, _ = _config(tmp_path / "c", named, module="example.celery")
    assert config.backend_kind() == "unknown"
    # The near miss: the host's settings named and in the tree, with no backend: reported.
    named["hostsite/__init__.py"] = ""
    named["hostsite/settings.py"] = "DEBUG = True\n"
    config, _ = _config(tmp_path / "d", named, module="example.celery")
    assert config.backend_kind() == "none"
    write(tmp_path / "d", named)
    assert [f["code"] for f in findings(["."], True, tmp_path / "d")[0]] == ["CCL008"]


@pytest.mark.parametrize("backend, says", [
    ('"db+sqlite:///results.sqlite"', "the body never runs: celery.chord_unlock waits for "
                                      "results that are never stored and retries forever"),
    ('"cache+memory://"', "the body never runs: the cache backend counts the header's results, "
                          "which are never stored, and after result_chord_join_timeout (3 s) "
                          "the body fails with ChordError(TimeoutError)"),
    ('"redis://localhost:6379/1"', "it works on the Redis backend by accident"),
    ('os.environ["RESULT_BACKEND"]', "on the database backend the body never runs "
                                     "(celery.chord_unlock retries forever); on the cache "
                                     "backend it fails with ChordError(TimeoutError) without "
                                     "running"),
])
def test_ccl008_says_what_header_tasks_ignoring_results_do_on_the_apps_backend(
        tmp_path, backend, says):
    """As observed (CCL008's documentation): on the database backend chord_unlock retries
    forever, on the cache backend the body ends ChordError(TimeoutError), on Redis it runs."""
    write(tmp_path, {"proj/__init__.py": "", "proj/celery.py": f"""
        import os
        from celery import Celery, chord
        app = Celery("proj", broker="redis://", backend={backend})

        @app.task(ignore_result=True)
        def fetch(x):
            return x

        @app.task
        def merge(values):
            return values

        def run():
            return chord([fetch.s(1), fetch.s(2)], merge.s()).delay()
    """})
    found = [f for f in findings(["proj"], True, tmp_path)[0] if f["code"] == "CCL008"]
    assert len(found) == 1
    assert found[0]["message"].startswith(f"chord header task fetch ignores results: {says}")
