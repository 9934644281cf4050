"""The pre-filter must never change a finding: what it skips or reads cheaply holds nothing the
rules need. These tests run the analysis with and without it and require identical results."""
from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from celery_chain_lint import engine
from celery_chain_lint.load import reading
from celery_chain_lint.load.bodies import (class_attributes, definitions_facts, module_value,
                                      with_bodies_on_demand)
from celery_chain_lint.load.discovery import discover
from celery_chain_lint.load.prefilter import scan
from celery_chain_lint.load.source import decode, split_lines

from projects import DJANGO_SETTINGS_READ_BY_NAME, findings, write

ROOT = Path(__file__).resolve().parents[1]


JOBS = """
    from celery import shared_task

    @shared_task
    def charge(amount, currency):
        return amount

    @shared_task
    def notify(message):
        return message
"""

REEXPORTS = {
    "shop/__init__.py": "",
    "shop/jobs.py": JOBS,
    # Re-exports that never say "task" nor "celery".
    "shop/api/__init__.py": "from shop.jobs import charge\nfrom shop.jobs import notify as tell\n",
    "shop/star/__init__.py": "from shop.jobs import *\n",
    "shop/alias.py": "from shop.api import tell as inform\n",
    "shop/flows.py": """
        from celery import chain
        from shop.api import charge, tell
        from shop.star import notify
        from shop.alias import inform
        import shop.api as api

        def through_package():
            return chain(charge.s(1, "usd"), charge.s(2, "eur"))  # CCL001

        def through_alias():
            return chain(charge.s(1, "usd"), tell.s("done"))  # CCL001

        def through_star():
            return notify.s("a", "b")  # CCL002

        def through_two_aliases():
            return inform.s("a", "b")  # CCL002

        def through_module_attribute():
            return api.charge.s(1, "usd", 3)  # CCL002
    """,
    # No Celery word, no canvas call: only the imported names make it matter.
    "shop/plain.py": """
        from shop.flows import through_package
        from shop.api import charge

        def build(first, second):
            pipeline = charge.si(1, "usd")
            return pipeline
    """,
    "shop/unrelated.py": "import os\n\ndef helper(path):\n    return os.path.basename(path)\n",
}


def test_task_reexported_through_init_without_the_word_task_still_resolves(tmp_path):
    write(tmp_path, REEXPORTS)
    init = (tmp_path / "shop/api/__init__.py").read_bytes()
    assert b"task" not in init and scan(init)[0] is False
    with_filter, stats = findings(["shop"], True, tmp_path)
    without, _ = findings(["shop"], False, tmp_path)
    assert with_filter == without
    lines = {(Path(f["path"]).name, f["line"], f["code"]) for f in with_filter}
    assert ("flows.py", 9, "CCL001") in lines
    assert ("flows.py", 12, "CCL001") in lines
    assert ("flows.py", 15, "CCL002") in lines  # a star re-export
    assert ("flows.py", 18, "CCL002") in lines  # two aliases deep
    assert ("flows.py", 21, "CCL002") in lines  # an attribute of the re-exporting package
    assert stats["full"] < stats["files"]  # the filter did leave files out


def test_partial_run_resolves_through_reexports(tmp_path):
    write(tmp_path, REEXPORTS)
    (tmp_path / "pyproject.toml").write_text("")
    partial, _ = findings(["shop/flows.py"], True, tmp_path)
    whole, _ = findings(["shop"], True, tmp_path)
    assert partial == [f for f in whole if f["path"] == os.path.join("shop", "flows.py")]
    assert partial


def test_unrelated_files_are_never_parsed(tmp_path):
    files = {"app/__init__.py": "", "app/jobs.py": JOBS,
             "app/flows.py": "from app.jobs import charge\n\ndef f():\n    return charge.s()\n"}
    for index in range(30):
        files[f"app/util{index}.py"] = f"import os\n\ndef f{index}(x):\n    return os.sep * x\n"
    write(tmp_path, files)
    _, stats = findings(["app"], True, tmp_path)
    assert stats["files"] == 33
    assert stats["full"] == 2  # jobs (imports celery) and flows (a canvas call)
    assert stats["parsed"] <= 3  # and the package __init__, when resolution looks into it


def test_fixtures_give_identical_findings_with_and_without_the_prefilter(tmp_path):
    shutil.copytree(ROOT / "fixtures", tmp_path / "fixtures")
    with_filter, stats = findings(["fixtures"], True, tmp_path)
    without, _ = findings(["fixtures"], False, tmp_path)

    def comparable(found):
        # A file the filter proves irrelevant is not parsed: no CCL999 for it (documented).
        return [f for f in found if f["code"] != "CCL999"
                or scan((tmp_path / f["path"]).read_bytes())[0]]

    assert comparable(with_filter) == comparable(without)
    assert with_filter


@pytest.mark.parametrize("source, seed", [
    ("from celery import shared_task\n", True),
    ("import celery\n", True),
    ("from .celery import app\n", True),
    ("x = add.delay(1)\n", True),
    ("sig = add.si(1)\n", True),
    # Settings are read by name when an app names them: no reason for the full pass.
    ("CELERY_BROKER_URL = 'redis://'\n", False),
    ("import os\nfrom celery_chain_lint import engine\n", False),
    ("import re\nm = re.match('a', 'a').group(0)\n", False),
    # attrs' class decorator (openedx/credentials) is no signature; beside one, a canvas is.
    ("import attr\n@attr.s(auto_attribs=True, frozen=True)\nclass A:\n    x: int\n", False),
    ("import attr\n@attr.s(frozen=True)\nclass A:\n    x: int\nsig = add.s(1)\n", True),
    ("@x.attr.s(1)\ndef f():\n    pass\n", True),
])
def test_scan_seeds(source, seed):
    assert scan(source.encode())[0] is seed


def test_scan_reads_every_import_statement():
    source = (b"from a.b import (\n    c,\n    d as e,\n)\n"
              b"try: import f\nexcept ImportError: pass\n"
              b"def g():\n    from .h import i\n"
              b"x = 1; import j, \\\n    k\n")
    found = scan(source)
    assert {"f", "j", "k"} <= found.words  # not alone on their lines: read as words
    assert [(level, module, names and set(names)) for level, module, names in found.imports] \
        == [(0, "a.b", {"c", "d", "as", "e"}), (1, "h", {"i"})]


def test_scan_keeps_the_module_of_each_import_alone_on_its_line():
    source = (b"import os.path as p, sys\nfrom .. import *\nfrom . x . y import z  # import w\n"
              b"import a.b, \\\n    c\nfrom importers.celery import app\n")
    found = scan(source)
    assert found.imports == ((0, "os.path", None), (0, "sys", None), (2, "", ("*",)),
                             (1, "x.y", ("z",)), (0, "a.b", None), (0, "c", None),
                             (0, "importers.celery", ("app",)))
    assert found.words == {"celery"} and found.seed  # ``celery`` is asked wherever spelled


def test_scan_reads_a_continued_from_import_whole_and_skips_prose():
    source = (b'HELP = "use this for an automated import of invoices"\n'
              b"from shop.jobs \\\n    import charge\n")
    found = scan(source)
    assert found.imports == ((0, "shop.jobs", ("charge",)),)
    assert found.words == frozenset()


def _definitions_view(facts):
    return (
        {name: repr(binding) for name, binding in facts.bindings.items()},
        list(facts.star_imports),
        {q: repr((f.name, f.span, f.name_span, f.params, f.decorators, f.is_async, f.is_method))
         for q, f in facts.functions.items() if "<locals>" not in q},
        {q: repr((c.name, c.span, c.bases, c.keywords, c.attributes, c.methods))
         for q, c in facts.classes.items() if "<locals>" not in q},
    )


def _corpus():
    files = [s for s in discover([str(ROOT / "fixtures")])]
    try:
        import celery
        package = Path(celery.__file__).parent
        files += discover([str(package / "canvas.py"), str(package / "app" / "task.py"),
                           str(package / "app" / "base.py"), str(package / "result.py")])
    except ImportError:
        pass
    return files


def test_definitions_tier_holds_exactly_the_full_pass_definitions():
    """The definitions tier elides function bodies and runs the same extractor: bindings,
    signatures, decorators and classes must equal the full pass's."""
    compared = 0
    for source in _corpus():
        full, problem = reading.analyse_file(source)
        if full is None:
            continue
        data = Path(source.path).read_bytes()
        cheap = definitions_facts(data, source.path, source.module, source.is_package)
        assert cheap is not None, source.path
        lines = split_lines(decode(data).text)  # class attributes, values: read when asked
        where = (source.path, source.module, source.is_package)
        with_bodies_on_demand(cheap, lambda function: None,
                              lambda cls: class_attributes(lines, *where, cls),
                              lambda value: module_value(lines, *where, value))
        assert _definitions_view(cheap) == _definitions_view(full), source.path
        assert not any(f.calls or f.returns for f in cheap.functions.values()
                       if f.span.line != f.span.end_line)
        compared += 1
    assert compared >= 20


def test_definitions_tier_of_a_file_that_does_not_parse_is_none():
    assert definitions_facts(b"def f(:\n", "x.py", "x", False) is None
    assert definitions_facts(b"\x00\x01", "x.py", "x", False) is None


def test_analysing_celery_itself_does_not_make_every_file_matter(tmp_path):
    """In Celery's own source tree ``import celery`` resolves inside the project: it is no
    reason for the full pass (a canvas call still is), and findings do not change."""
    files = {f"celery/{name}": "" for name in (
        "__init__.py", "_state.py", "canvas.py", "result.py", "app/__init__.py",
        "app/base.py", "app/task.py")}
    files["celery/worker.py"] = "from celery.canvas import chain\nfrom celery import app\n\n" \
                                "def run(x):\n    return chain(x)\n"
    files["celery/calls.py"] = "from celery.app import task\n\ndef go(t):\n    return t.delay(1)\n"
    write(tmp_path, files)
    with_filter, stats = findings(["celery"], True, tmp_path)
    without, _ = findings(["celery"], False, tmp_path)
    assert with_filter == without
    assert stats["full"] == 1  # calls.py, for its canvas call


def test_rules_following_calls_into_a_module_left_out_see_its_bodies(tmp_path):
    """CCL005 follows a task's calls into project helpers: a helper module that never mentions
    Celery is read by the definitions tier, and its bodies are extracted when a rule asks."""
    write(tmp_path, {
        "proj/__init__.py": "",
        "proj/net.py": """
            import urllib.request

            def download(url):
                with urllib.request.urlopen(url, timeout=10) as response:
                    return response.status
        """,
        "proj/tasks.py": """
            from celery import Celery, chain
            from proj.net import download

            app = Celery("proj", broker="redis://", backend="redis://")

            @app.task
            def mirror(url):
                return download(url)

            @app.task
            def report(status):
                return status

            def flow():
                return chain(mirror.s("http://example.com"), report.s()).delay()
        """,
    })
    assert scan((tmp_path / "proj" / "net.py").read_bytes())[0] is False
    with_filter, stats = findings(["proj"], True, tmp_path)
    without, _ = findings(["proj"], False, tmp_path)
    assert with_filter == without
    assert any(f["code"] == "CCL005" for f in with_filter)


def test_settings_found_without_the_environment_need_no_celery_word(tmp_path):
    """A Django settings module never mentions Celery: the app reads it by name (here the
    project's only ``settings`` module, no DJANGO_SETTINGS_MODULE set), from the definitions
    tier. Its ``CELERY_TASK_IGNORE_RESULT`` decides CCL008, with or without the filter."""
    write(tmp_path, DJANGO_SETTINGS_READ_BY_NAME)
    with_filter, stats = findings(["site"], True, tmp_path)
    without, _ = findings(["site"], False, tmp_path)
    assert with_filter == without
    assert [f["code"] for f in with_filter] == ["CCL008"]
    assert stats["full"] == 2  # celery.py and tasks.py; settings.py read by name


PROMOTION = {
    "app/__init__.py": "",
    "app/jobs.py": textwrap.dedent(JOBS) + "\ndef amount_text(amount):\n    return str(amount)\n",
    # ``.signature(`` is no reason for the full pass: only what these files import is.
    "app/relative.py": """
        from .jobs import charge

        def flow():
            return charge.signature((1, "usd", 3))  # CCL002
    """,
    "app/module_import.py": """
        from . import jobs

        def flow():
            return jobs.charge.signature((1, "usd", 3))  # CCL002
    """,
    "app/star.py": """
        from .jobs import *

        def flow():
            return charge.signature((1, "usd", 3))  # CCL002
    """,
    "app/reexport.py": "from app import jobs as work\n",
    "app/user.py": """
        from app.reexport import work

        def flow():
            return work.charge.signature((1, "usd", 3))  # CCL002
    """,
    # Takes a plain function from the module of the tasks: nothing Celery-related.
    "app/views.py": """
        from app.jobs import amount_text

        def show(amount):
            return amount_text(amount)
    """,
    # Another module called ``jobs``.
    "other/__init__.py": "",
    "other/jobs.py": "def run():\n    return 1\n",
    "app/report.py": "from other.jobs import run\n\ndef report():\n    return run()\n",
    "app/plain_import.py": """
        import app.jobs

        def flow():
            return app.jobs.charge.signature((1, "usd", 3))  # CCL002
    """,
    "app/other_import.py": "import other.jobs\n\ndef report():\n    return other.jobs.run()\n",
}


def test_a_file_is_promoted_by_what_it_imports_not_by_the_module_it_imports_it_from(tmp_path):
    write(tmp_path, PROMOTION)
    with_filter, stats = findings(["app", "other"], True, tmp_path)
    without, _ = findings(["app", "other"], False, tmp_path)
    assert with_filter == without
    flagged = {(Path(f["path"]).name, f["code"]) for f in with_filter}
    for name in ("relative.py", "module_import.py", "star.py", "user.py", "plain_import.py"):
        assert (name, "CCL002") in flagged
    # jobs (imports celery), the five above and reexport.py: not views.py, report.py nor
    # other_import.py, which import something else from, or another, module called jobs.
    assert stats["files"] == 13 and stats["full"] == 7


# Celery's Django layout: the package's ``__init__.py`` holds the app, so ``import
# site.util.text`` binds a name (``site``) that reaches it.
THROUGH_THE_PACKAGE = {
    "site/__init__.py": "from .celery import app as celery_app\n",
    "site/celery.py": "from celery import Celery\n\napp = Celery('site')\n",
    "site/util/__init__.py": "",
    "site/util/text.py": "def shout(x):\n    return x.upper()\n",
    "site/jobs.py": textwrap.dedent(JOBS),
    # Never spells what the package holds: nothing Celery-related (a Django migration).
    "site/migration.py": "import site.util.text\n\nVALUE = site.util.text.shout('a')\n",
    # Spells it: a task, defined through the package's app.
    "site/notify.py": """
        import site.util.text

        @site.celery_app.task(bind=True)
        def notify(self, order_id):
            try:
                site.util.text.shout(order_id)
                self.retry(countdown=5)  # CCL012
            except Exception:
                return "gave up"
    """,
    # Spells a relevant module of the package.
    "site/flow.py": """
        import site.util.text

        def flow():
            return site.jobs.charge.signature((1, "usd", 3))  # CCL002
    """,
}


def test_a_package_reached_through_a_submodule_import_promotes_only_files_that_spell_it(
        tmp_path):
    write(tmp_path, THROUGH_THE_PACKAGE)
    with_filter, stats = findings(["site"], True, tmp_path)
    without, _ = findings(["site"], False, tmp_path)
    assert with_filter == without
    assert sorted((Path(f["path"]).name, f["code"]) for f in with_filter) == [
        ("flow.py", "CCL002"), ("notify.py", "CCL012")]
    # celery.py and jobs.py (import celery), __init__.py (binds the app), notify.py, flow.py
    assert stats["full"] == 5


def test_roots_and_decorators_naming_nothing_celery_related_are_not_followed(tmp_path):
    """Once the project is known, a root or a decorator that names nothing Celery-related
    (``Project.may_reach``) is neither built nor resolved: the modules left out that it names
    are never read. The findings stay those of the analysis without the pre-filter."""
    files = {
        "shop/__init__.py": "",
        "shop/tasks.py": "from celery import shared_task\n\n@shared_task\ndef add(x, y):\n"
                         "    return x + y\n",
        "shop/util.py": "def memo(f):\n    return f\n\ndef combine(x):\n    return x\n",
        "shop/flows.py": """\
            from django.db import transaction
            from shop import util
            from shop.tasks import add
            from shop.util import memo

            @memo
            def helper(order):
                with transaction.atomic():
                    order.delay()  # a parameter's: not a task

            util.combine(1) | util.combine(2)
            (add.s(1, 2) | add.s(3, 4)).delay()  # CCL001
        """,
    }
    write(tmp_path, files)
    found = {}
    for prefilter in (True, False):
        found[prefilter], stats = findings(["."], prefilter, tmp_path)
        if prefilter:
            assert stats["definitions"] == 0, stats  # shop/util.py: never read
    assert found[True] == found[False]
    assert [f["code"] for f in found[True]] == ["CCL001"]


# A Django settings module binding a beat schedule (osf.io's ``website/settings``): every view,
# model and migration imports the settings, and none reaches a canvas through ``crontab``.
SETTINGS_WITH_A_SCHEDULE = {
    "site/__init__.py": "",
    "site/settings.py": """
        from celery.schedules import crontab
        from celery.utils.log import get_task_logger

        BEAT = {"nightly": {"task": "site.jobs.charge", "schedule": crontab(hour=3)}}
        LOG = get_task_logger(__name__)
    """,
    "site/jobs.py": textwrap.dedent(JOBS),
    # Reaches the settings only: nothing Celery-related, never read in full.
    "site/views.py": """
        from site import settings

        def show():
            return settings.BEAT
    """,
    "site/migration.py": "from site.settings import crontab\n\nEVERY = crontab(minute=5)\n",
    # Reaches a task through its module: read in full.
    "site/flow.py": """
        from site import settings, jobs

        def flow():
            return jobs.charge.signature((1, "usd", settings.BEAT))  # CCL002
    """,
}


def test_a_module_binding_only_inert_celery_objects_promotes_nothing(tmp_path):
    write(tmp_path, SETTINGS_WITH_A_SCHEDULE)
    with_filter, stats = findings(["site"], True, tmp_path)
    without, _ = findings(["site"], False, tmp_path)
    assert with_filter == without
    assert [(Path(f["path"]).name, f["code"]) for f in with_filter] == [("flow.py", "CCL002")]
    # settings.py and jobs.py (import celery) and flow.py (imports a task): not views.py nor
    # migration.py, which reach a schedule and a logger only.
    assert stats["full"] == 3


# ``import site.util.text`` binds ``site``: the file reaches ``site.jobs`` by writing it, not by
# spelling ``jobs`` elsewhere (a Django migration's ``models`` of ``django.db``).
SPELLED_AFTER_THE_PACKAGE = {
    "site/__init__.py": "",
    "site/util/__init__.py": "",
    "site/util/text.py": "def shout(x):\n    return x.upper()\n",
    "site/jobs.py": textwrap.dedent(JOBS),
    "site/models.py": "from site.jobs import charge\n\nCHARGE = charge\n",
    "site/migration.py": """
        import site.util.text
        from django.db import models

        FIELD = models.CharField(default=site.util.text.shout("jobs"))
    """,
    "site/flow.py": """
        import site.util.text

        def flow():
            return site . models.CHARGE.signature((1, "usd", 3))  # CCL002
    """,
    "site/last.py": """
        import site.models

        def flow():
            return site.models.CHARGE.signature((1, "usd", 3))  # CCL002
    """,
}


def test_a_package_reached_through_an_import_promotes_files_that_write_the_path(tmp_path):
    write(tmp_path, SPELLED_AFTER_THE_PACKAGE)
    with_filter, stats = findings(["site"], True, tmp_path)
    without, _ = findings(["site"], False, tmp_path)
    assert with_filter == without
    assert sorted((Path(f["path"]).name, f["code"]) for f in with_filter) == [
        ("flow.py", "CCL002"), ("last.py", "CCL002")]
    # jobs.py (imports celery), models.py (imports a task), flow.py and last.py: not
    # migration.py, which spells ``models`` and ``jobs`` but writes neither after ``site``.
    assert stats["full"] == 4
