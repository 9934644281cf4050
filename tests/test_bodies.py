"""Eliding function bodies (celery_chain_lint/load/bodies.py) must never change what the rules see:
the facts of the eliding pass, with every elided body read on demand, equal the facts of the
pass that reads everything, on the fixtures and on real Celery-dense code."""
from __future__ import annotations

import ast
import dataclasses
import sysconfig
import textwrap
from pathlib import Path

import pytest

from celery_chain_lint import engine
from celery_chain_lint.load import reading
from celery_chain_lint.load.bodies import (class_attributes, function_facts, function_roots,
                                      quiet_bodies_elided, with_roots)
from celery_chain_lint.load.discovery import SourceFile, discover
from celery_chain_lint.load.source import decode, split_lines

from projects import findings, write

ROOT = Path(__file__).resolve().parents[1]


_WHOLE = {}


def analysed_whole(source: SourceFile):
    """``reading.analyse_file(source)`` (the pass that reads everything), once per file and
    content: the two tests on real code analyse the same few hundred files (the facts are only
    read, never changed)."""
    key = (source.path, source.module, source.is_package, source.content)
    if key not in _WHOLE:
        _WHOLE[key] = reading.analyse_file(source)
    return _WHOLE[key]


@pytest.fixture(scope="module", autouse=True)
def _forget_the_whole_facts():
    yield
    _WHOLE.clear()  # some 80 MB for the real code


def complete_and_elided(data: bytes, path: str = "m.py", module: str = "m"):
    """(facts read whole, facts of the eliding pass with every elided body and class's
    statements read alone, the qualnames of the bodies elided); None when the file cannot be
    analysed at all."""
    complete, problem = analysed_whole(SourceFile(path, module, False, data))
    if problem is not None:
        return None
    elided = quiet_bodies_elided(data, path, module, False)
    lines = split_lines(decode(data).text)
    qualnames = [q for q, function in elided.functions.items() if function.elided is not None]
    for body in elided.roots_if_relevant:  # every one: the pipeline reads fewer
        read = function_roots(lines, path, module, False, body)
        assert read is not None, (path, body.qualname)
        with_roots(elided, body, read)
    for qualname in qualnames:
        function = elided.functions[qualname]
        body = function_facts(lines, path, module, False, function)
        assert body is not None, (path, qualname)
        assert function.elided.first_line <= function.span.line
        assert function.params == body.params, (path, qualname)  # read from a compact header
        elided.functions[qualname] = dataclasses.replace(body, elided=None)
    for qualname, cls in elided.classes.items():
        if cls.elided is not None:
            attributes = class_attributes(lines, path, module, False, cls)
            assert attributes is not None, (path, qualname)
            elided.classes[qualname] = dataclasses.replace(cls, attributes=attributes,
                                                           elided=None)
    return complete, elided, qualnames


def assert_same_facts(complete, elided, elided_qualnames, where):
    # IR nodes compare by identity (rules rely on it): compare what they print, every field.
    for name in ("bindings", "star_imports", "classes", "roots", "calls",
                 "attribute_assignments", "conf_writes_in_functions", "config_uses"):
        assert repr(getattr(elided, name)) == repr(getattr(complete, name)), (where, name)
    # Functions defined inside an elided body are not listed: no name resolves to a
    # function's local, and one that may be a task (decorated) is in a body read for its roots
    # once the project is known, if relevant, which lists them (a task defined in a factory).
    inside_elided = tuple(qualname + ".<locals>." for qualname in elided_qualnames)
    listed = [q for q in complete.functions
              if not q.startswith(inside_elided) or q in elided.functions]
    assert list(elided.functions) == listed, where
    for qualname in listed:
        assert repr(elided.functions[qualname]) == repr(complete.functions[qualname]), \
            (where, qualname)


def _real_code():
    """The fixtures, Celery's sources (Celery-dense code), some of the standard library."""
    paths = [ROOT / "fixtures"]
    for name in ("celery",):
        try:
            paths.append(Path(__import__(name).__file__).parent)
        except ImportError:
            pass
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths += [stdlib / "json", stdlib / "logging"]
    return [s for s in discover([str(p) for p in paths if p.exists()])]


def test_eliding_changes_no_fact_of_real_code():
    files = elided_bodies = 0
    for source in _real_code():
        data = Path(source.path).read_bytes()
        compared = complete_and_elided(data, source.path, source.module)
        if compared is None:
            continue  # fixtures of files that do not parse: not this test's subject
        complete, elided, qualnames = compared
        assert_same_facts(complete, elided, qualnames, source.path)
        files += 1
        elided_bodies += len(qualnames)
    assert files >= 200 and elided_bodies >= 1500, (files, elided_bodies)


ODD_PLACES = """\
    # -*- coding: latin-1 -*-
    import os

    def substituted(t):
        send = t.delay
        return send(1)

    def aliased(sigs):
        from celery import group as fan_out
        return fan_out(sigs)

    def configured(app):
        conf = app.conf
        conf.update(task_acks_late=True)

    def environment():
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

    def factory(channel):
        @app.task(name=channel)
        def inner(x):
            return x
        return inner

    def given(app):
        @app.task
        def made(x):
            return x
        return made

    def quiet(x):
        total = 0
        for item in x:
            total += item  # caf\xe9
        return total

    if os.name:
        class Outer:
            class Inner:
                def method(self, y):

                    return {"y": y}
    else:
        try:
            def guarded(z):
                return z.get()
        finally:
            pass

    match os.sep:
        case "/":
            def in_case(a):
                return a * 2
        case _:
            pass

    class Tabbed:
    \tdef tab(self):
    \t\treturn self.value
"""


def test_bodies_in_odd_places_are_read_back_exactly():
    data = textwrap.dedent(ODD_PLACES).encode("latin-1")
    complete, elided, qualnames = complete_and_elided(data)
    assert_same_facts(complete, elided, qualnames, "odd places")
    assert qualnames == ["substituted", "factory", "quiet", "Outer.Inner.method", "guarded",
                         "in_case", "Tabbed.tab"]
    facts = quiet_bodies_elided(data, "m.py", "m", False)
    for name in ("aliased", "configured", "environment", "given"):
        # importing a canvas itself, configuring an app or Django, making tasks on the app
        # it is given (index/factories.py)
        assert facts.functions[name].elided is None, name
    # A task defined in a factory: read with its roots, if relevant.
    assert facts.functions["factory"].elided.may_hold_roots
    # A task method on a parameter: read once the project is known, if it turns out relevant.
    body = facts.functions["substituted"].elided
    assert body.may_hold_roots and body.receivers == {("t",)}


def test_crlf_and_a_body_on_the_last_line():
    data = b"import os\r\n\r\ndef f(x):\r\n    return os.path.join(x, 'a')\r\n" \
           b"def g(y):\r\n    return y"
    complete, elided, qualnames = complete_and_elided(data)
    assert qualnames == ["f", "g"]
    assert_same_facts(complete, elided, qualnames, "crlf")


def test_elided_roots_match_the_extractor(tmp_path):
    """``body_reading`` over-approximates ``looks_like_canvas``: a body holding any root of the
    complete pass is read now or flagged as one that may hold roots."""
    source = textwrap.dedent("""\
        from celery import chain
        from shop.tasks import add

        def a():
            x = add.si(1)
            return x

        def b(y):
            y |= add.s()
            return y

        def c(items):
            return [i.update(1) for i in items]

        def d(app, url):
            app.conf.result_backend = url

        def e(app, url):
            app.settings.result_backend = url
            return app.conf.result_backend

        def f(self, url):
            self.app.conf.result_backend = url  # a parameter: never an app the index knows

        def g(self, url):
            self = current()
            self.app.conf.result_backend = url

        def h(first, second):
            return first.set(queue="q") | second
    """).encode()
    complete, _, _ = complete_and_elided(source)
    scopes = {root.scope for root in complete.roots}
    assert scopes == {"a", "b", "h"}
    assert [scope for scope, _ in complete.conf_writes_in_functions] == ["g"]
    facts = quiet_bodies_elided(source, "m.py", "m", False)
    assert [q for q, f in facts.functions.items() if f.elided is not None] == [
        "a", "b", "c", "d", "e", "f", "h"]
    assert [body.qualname for body in facts.roots_if_relevant] == ["a", "b", "h"]


@pytest.mark.parametrize("source", [
    b"def f(:\n    pass\n",  # a syntax error: the whole-file pass reports it, located
    b"def f():\n    x = (" + b"(" * 300 + b")" * 300 + b")\n",  # too deep inside a body
])
def test_problems_inside_bodies_are_still_reported(source):
    facts, problem = reading.analyse_file(SourceFile("m.py", "m", False, source),
                                         elide_quiet_bodies=True)
    assert facts is None and problem is not None and problem.span.line in (1, 2)


def test_a_task_under_a_decorator_not_named_task_is_read_when_a_rule_asks(tmp_path):
    """A decorated body is read at once only when a decorator's name says "task"
    (``roots.TASK_WORD``): a project's own ``@job`` (``app.task`` underneath) is elided, and the
    rules that read its body (CCL005 network I/O, CCL004 large result) find what they find
    when every body is read with the rest."""
    from celery_chain_lint.load.pipeline import Analysis
    from celery_chain_lint.config.settings import Settings

    files = {
        "shop/__init__.py": "",
        "shop/worker.py": """\
            from celery import Celery

            app = Celery("shop")

            def job(fn):
                return app.task(fn, acks_late=True)
        """,
        "shop/jobs.py": """\
            import requests
            from .worker import job

            @job
            def fetch(url):
                response = requests.get(url, timeout=10)
                return response.content

            @job
            def count(response):
                return 1

            def flow(url):
                return (fetch.s(url) | count.s()).delay()
        """,
    }
    write(tmp_path, files)
    sources = discover([str(tmp_path)])
    elided = Analysis(Settings(use_cache=False)).run(sources)[0]
    assert elided.modules["shop.jobs"].functions["fetch"].elided is not None
    # Without the pre-filter, every body is read at once.
    found = {prefilter: findings(["."], prefilter, tmp_path)[0] for prefilter in (True, False)}
    assert found[True] == found[False]
    assert {f["code"] for f in found[True]} >= {"CCL004", "CCL005"}


CLASSES_IN_ODD_PLACES = """\
    import os
    from celery import Task

    class OnlyFields:
        name = CharField(
            max_length=20,
        )
        help = '''
    text at column 0
    '''

    class Model(Base, metaclass=Meta):
        \"\"\"A docstring.\"\"\"
        a = 1; b = [2,
                    3]
        c: int = 4
        d: str
        e += 1

        def method(self):
            return self.a

        class Meta:
            ordering = ["a"]

        f = a

    class OneLine: x = 1; y = 2

    @decorated
    class Multi(
        Task,
    ):
        autoretry_for = (OSError,)  # caf\xe9
        max_retries = 5

    if os.name:
        class Guarded:
            if os.sep:
                inside_if = 1
            retries = 3

    try:
    \tclass InTry:
    \t\tvalue = 1
    finally:
    \tpass

    def factory():
        class Local:
            kept = 1
        return Local
"""


def test_class_statements_in_odd_places_are_read_back_exactly():
    data = textwrap.dedent(CLASSES_IN_ODD_PLACES).encode("latin-1")
    data = data.replace(b"import os", b"# -*- coding: latin-1 -*-\r\nimport os")
    complete, elided, qualnames = complete_and_elided(data)
    assert_same_facts(complete, elided, qualnames, "classes in odd places")
    statements = quiet_bodies_elided(data, "m.py", "m", False).classes
    assert [q for q, c in statements.items() if c.elided is not None] == [
        "OnlyFields", "Model", "Model.Meta", "Multi", "Guarded", "InTry"]
    assert complete.classes["Multi"].attributes and not statements["Multi"].attributes
    assert list(complete.classes["Model"].attributes) == ["a", "b", "c", "f"]


def test_a_task_class_reads_its_elided_options_when_a_rule_asks(tmp_path):
    """A class-based task's options are class attributes: elided with every class body's
    statements, they are read when the task index asks, and the findings are the same."""
    files = {
        "shop/__init__.py": "",
        "shop/jobs.py": """\
            import requests
            from celery import Celery, Task, chain

            app = Celery("shop")

            class Retrying(Task):
                autoretry_for = (OSError,)
                max_retries = 3

            @app.task(base=Retrying)
            def fetch(url):
                return requests.get(url, timeout=10).status_code

            @app.task
            def fetch_once(url):
                return requests.get(url, timeout=10).status_code

            def flow():
                return chain(fetch.s("u"), fetch_once.si("v"), fetch.si("w")).delay()
        """,
    }
    write(tmp_path, files)
    found = {prefilter: findings(["."], prefilter, tmp_path)[0] for prefilter in (True, False)}
    assert found[True] == found[False]
    assert [(f["code"], f["line"]) for f in found[True] if f["code"] == "CCL005"] == [
        ("CCL005", 15)]  # fetch_once only


HEADERS = """\
    # -*- coding: latin-1 -*-
    def positional_only(a, b=lambda: {1: 2}, /, c: "str" = ":", *, d, e=(1,
                                                                        2), **kw) -> int:
        return a

    async def awaited(
        self,
        request: "Request",  # a comment
        *args: int,
    ) -> None:
        return None

    def\tspaced (x,):
        return x

    def keyword_only(*, only):
        return only

    def caf\xe9(\xe9t\xe9=1):
        return \xe9t\xe9

    def nothing(
    ):
        return 1
"""


def test_elided_headers_keep_their_parameters():
    data = textwrap.dedent(HEADERS).encode("latin-1")
    complete, elided, qualnames = complete_and_elided(data)
    assert_same_facts(complete, elided, qualnames, "headers")
    assert qualnames == ["positional_only", "awaited", "spaced", "keyword_only", "café",
                         "nothing"]
    from celery_chain_lint.load.bodies import skeleton

    kept = skeleton(data, lambda function, spelling: False)[0].decode("latin-1").splitlines()
    assert kept[1] == "def positional_only(a, b=..., /, c=..., *, d, e=..., **kw):"
    assert kept[5:10] == ["async def awaited(self, request, *args):", "", "", "", ""]
    assert kept[12] == "def\tspaced (x):"
    assert kept[18] == "def caf\xe9(\xe9t\xe9=1):"  # not ASCII: left as it is


def test_bodies_that_may_hold_roots_are_read_when_they_spell_a_celery_name(tmp_path):
    """A body whose only reason to be read is a root is parsed once the project is known,
    and only if it spells a Celery-related name of its module (``roots.IF_RELEVANT``)."""
    files = {
        "shop/__init__.py": "",
        "shop/tasks.py": """\
            from celery import shared_task

            @shared_task
            def add(x, y):
                return x + y
        """,
        "shop/flows.py": """\
            from django.db.models import Q
            from shop.tasks import add

            FIRST = add.s(1, 2)
            NEXT = add.s(3, 4)

            def pipeline():
                return FIRST.set(queue="fast") | NEXT  # CCL001: NEXT takes no result

            def direct():
                return (add.s(1, 2) | add.s(3, 4)).delay()  # CCL001

            def query(a, b):
                return Q(a) | Q(b)  # Django: never parsed

            def option(signature, text):
                signature.set(queue=text.replace("-", "_"))  # a parameter: never parsed
        """,
    }
    write(tmp_path, files)
    found = {}
    for prefilter in (True, False):
        found[prefilter], stats = findings(["."], prefilter, tmp_path)
        if prefilter:
            # pipeline(), through FIRST; direct() is read with the rest of the file: add comes
            # from a module that imports Celery (roots.likely_names).
            assert stats["root_bodies"] == 1
            # Its body facts come from that reading: never parsed a second time.
            assert "function_bodies" not in stats, stats
    assert found[True] == found[False]
    # NEXT, reported where it is defined, and the chain in direct()
    assert sorted((f["code"], f["line"]) for f in found[True]) == [("CCL001", 5), ("CCL001", 11)]


def test_bodies_left_unread_hold_nothing_for_the_rules_reading_every_body(tmp_path):
    """A body spelling task methods, canvas names or ``|`` is read once the project is known:
    if it names a Celery-related object (CCL017's sends, every root), or if a receiver of a
    task method may be a plain function (CCL015), through a module or a local alias. The
    others (a test suite's ``self.add.s()``, ``match.group(1)``) are never parsed, and CCL015
    and CCL017 skip them: the same findings as reading everything."""
    files = {
        "shop/__init__.py": "",
        "shop/helpers.py": """\
            def send_receipt(order_id):  # was a task
                return order_id
        """,
        "shop/tasks.py": """\
            from celery import shared_task

            @shared_task
            def notify(order_id):
                return order_id
        """,
        "shop/views.py": """\
            import re

            from django.db import transaction
            from shop import helpers
            from shop.helpers import send_receipt
            from shop.tasks import notify

            def through_module(order_id):
                helpers.send_receipt.delay(order_id)  # CCL015

            def through_alias(order_id):
                send = send_receipt
                send.delay(order_id)  # CCL015

            def sent(order_id):
                with transaction.atomic():
                    notify.delay(order_id)  # CCL017

            def on_a_parameter(case, order_id):
                case.add.delay(order_id)  # never parsed

            def regex(text):
                return re.match("a(b)", text).group(1)  # never parsed
        """,
    }
    write(tmp_path, files)
    found = {}
    for prefilter in (True, False):
        found[prefilter], stats = findings(["."], prefilter, tmp_path)
        if prefilter:
            # sent() is read with the rest (notify comes from a module importing Celery); the
            # two others once CCL015's receivers are known to be plain functions.
            assert stats["root_bodies"] == 2, stats
            assert "function_bodies" not in stats, stats
    assert found[True] == found[False]
    assert sorted((f["code"], f["line"]) for f in found[True]) == [
        ("CCL015", 9), ("CCL015", 13), ("CCL017", 17)]


def test_bodies_likely_relevant_are_read_with_the_rest():
    """A body naming what its module imports from Celery, from a module importing Celery, or a
    task of its own is read at once; one naming only the module's own values waits."""
    source = textwrap.dedent("""\
        from celery import group
        from shop import tasks
        from .helpers import fmt

        @shared_task
        def add(x, y):
            return x + y

        def fan_out(xs):
            return group(add.s(x, 1) for x in xs)

        def direct():
            return tasks.notify.delay(1)

        def local():
            return add.s(1, 2) | add.s(3)

        def waits(sig):
            return sig.set(queue=fmt("q"))
    """).encode()
    celery_modules = frozenset({"celery", "shop.tasks"})
    facts = quiet_bodies_elided(source, "shop/views.py", "shop.views", False,
                                celery_modules=celery_modules)
    assert [q for q, f in facts.functions.items() if f.elided is not None] == ["waits"]
    # Celery itself: nothing it names is Celery's, every such body waits.
    facts = quiet_bodies_elided(source, "shop/views.py", "shop.views", False)
    assert [body.qualname for body in facts.roots_if_relevant] == [
        "fan_out", "direct", "local", "waits"]


def test_bodies_sending_tasks_of_an_app_module_are_read_with_the_rest(tmp_path):
    """pretix's layout: the app in ``celery_app.py`` (no module named ``celery``), tasks in
    service modules importing it, views sending them: the views' bodies are likely relevant
    (``pipeline._near_celery``) and read with their file, not one at a time afterwards."""
    files = {
        "shop/__init__.py": "",
        "shop/celery_app.py": "from celery import Celery\napp = Celery('shop')\n",
        "shop/mail.py": """\
            from shop.celery_app import app

            @app.task
            def send_mail(to):
                return to
        """,
        "shop/views.py": """\
            from shop.mail import send_mail

            def signup(to):
                send_mail.apply_async((to, 1))  # CCL002
        """,
    }
    write(tmp_path, files)
    found, stats = findings(["."], True, tmp_path)
    assert [f["code"] for f in found] == ["CCL002"]
    assert "root_bodies" not in stats, stats


def test_relevance_reads_only_bodies_that_return_a_value(tmp_path):
    """The pre-filter's relevance follows a function's return values when its body names a
    relevant object (a factory returning a task); a body returning nothing (a test function) is
    never parsed for that."""
    files = {
        "shop/__init__.py": "",
        "shop/tasks.py": "from celery import shared_task\n\n@shared_task\ndef add(x, y):\n"
                         "    return x + y\n",
        "shop/helpers.py": """\
            from shop.tasks import add

            def test_name():
                assert add.name.endswith("add")

            def factory():
                chosen = add
                return chosen
        """,
        "shop/flows.py": "from shop.helpers import factory\n\nfactory().s(1)  # CCL002\n",
    }
    write(tmp_path, files)
    found = {}
    for prefilter in (True, False):
        found[prefilter], stats = findings(["."], prefilter, tmp_path)
        if prefilter:
            assert stats.get("function_bodies") == 1, stats  # factory(), not test_name()
    assert found[True] == found[False]


def test_a_task_defined_in_a_factory_is_found_once_its_body_turns_out_relevant(tmp_path):
    """A body defining a class or a decorated function waits for the project like a body
    holding roots; read because it names a task decorator, it lists what it defines."""
    import os

    from celery_chain_lint.load.pipeline import Analysis
    from celery_chain_lint.config.settings import Settings

    files = {
        "shop/__init__.py": "",
        "shop/app.py": "from celery import Celery\napp = Celery('shop')\n",
        "shop/factory.py": """\
            import functools

            from shop.app import app

            tagger = app.task  # not imported: the bodies wait for the project

            def make_tagger():
                @tagger
                def tags():
                    return {"a", "b"}
                return tags

            def make_cached():
                @functools.lru_cache
                def cached():
                    return {"a", "b"}
                return cached
        """,
    }
    write(tmp_path, files)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        found = {}
        for prefilter in (True, False):
            analysis = Analysis(Settings(use_cache=False), prefilter=prefilter)
            analysis.prepare(discover(["."]))
            project, _ = analysis.analyse()
            found[prefilter] = [task.display for task in project.all_tasks]
            functions = list(project.modules["shop.factory"].functions)
            if prefilter:  # make_cached() is never parsed, nor what it defines
                assert analysis.stats["root_bodies"] == 1, analysis.stats
                assert functions == ["make_tagger", "make_tagger.<locals>.tags", "make_cached"]
    finally:
        os.chdir(old)
    assert found[True] == found[False] == ["tags"]


def test_task_method_receivers_cover_what_the_extractor_sees_on_real_code():
    """``roots.Body.receivers`` over-approximates the receivers CCL015 resolves: every task
    method called on a dotted name in the facts of the whole-file pass (locals substituted)
    has that name among the receivers its function's ``ast`` gives, unless they are unknown."""
    from celery_chain_lint.facts import ir
    from celery_chain_lint.facts.roots import TASK_METHODS, read_body

    def dotted(expr):
        parts = []
        while isinstance(expr, ir.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        return tuple([expr.id] + parts[::-1]) if isinstance(expr, ir.Name) else None

    def functions(tree):  # qualname -> function node, as the extractor names them
        stack = [(node, "") for node in tree.body]
        while stack:
            node, prefix = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield prefix + node.name, node
            elif isinstance(node, ast.ClassDef):
                stack.extend((child, f"{prefix}{node.name}.") for child in node.body)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    stack.extend((child, prefix) for child in getattr(node, field, ()))

    checked = unknown = 0
    for source in _real_code():
        data = Path(source.path).read_bytes()
        # The same facts as analyse_file(source), which reads those bytes from the file.
        complete, problem = analysed_whole(
            SourceFile(source.path, source.module, source.is_package, data))
        if problem is not None:
            continue
        for qualname, node in functions(ast.parse(data)):
            function = complete.functions.get(qualname)
            if function is None:
                continue
            receivers = read_body(node).receivers
            for site in function.calls:
                func = site.call.func if isinstance(site.call, ir.Call) else None
                if isinstance(func, ir.Attribute) and func.attr in TASK_METHODS:
                    found = dotted(func.value)
                    if found is not None:
                        checked += 1
                        unknown += receivers is None
                        assert receivers is None or found in receivers, \
                            (source.path, qualname, found, receivers)
    # Known for nearly all of them (else CCL015 would read every body spelling one).
    assert checked >= 100 and unknown * 20 < checked, (checked, unknown)


def test_task_method_receivers_through_local_names():
    from celery_chain_lint.facts.roots import read_body

    def receivers(source: str):
        return read_body(ast.parse(textwrap.dedent(source)).body[0]).receivers

    assert receivers("def f(self):\n    self.add.s(1)\n") == {("self", "add")}
    assert receivers("def f():\n    c = helper\n    d = c\n    d.tasks.delay()\n") == {
        ("helper", "tasks")}
    # A call, a subscript or an operation never resolves to a function.
    assert receivers("def f(x):\n    c = chain(x)\n    c.delay()\n    x[0].s()\n") == set()
    # Bound otherwise: unknown.
    assert receivers("def f(xs):\n    for c in xs:\n        c.delay()\n") is None
    assert receivers("def f():\n    c = c.parent\n    c.delay()\n") is None
    assert receivers("def f():\n    from m import helper\n    helper.delay()\n") is None


def test_the_modules_read_to_decide_on_a_body_are_the_same_from_run_to_run(tmp_path):
    """Whether a body may call a task method on a plain function is decided in a fixed order,
    not the order of a set of strings (which changes with every process): else a run after a
    change may read a module no earlier run read, missing from the cache (and import libcst
    to parse it)."""
    import json
    import os
    import subprocess
    import sys

    files = {
        "shop/__init__.py": "",
        "shop/a.py": "def alpha(x):\n    return x\n",
        "shop/b.py": "class Beta:\n    pass\n",
        "shop/views.py": """\
            from shop.a import alpha
            from shop.b import Beta

            def send(items):
                for task in (alpha, items):  # a loop variable: every name is a candidate
                    task.delay(Beta())
        """,
    }
    write(tmp_path, files)
    script = ("import json, os\nfrom celery_chain_lint import engine\n"
              "from celery_chain_lint.config.settings import Settings\n"
              "print(json.dumps(engine.check(['.'], Settings(use_cache=False)).stats))")
    read = set()
    for seed in range(1, 7):
        environment = dict(os.environ, PYTHONHASHSEED=str(seed), PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, check=True)
        read.add(json.loads(done.stdout.strip().splitlines()[-1]).get("definitions"))
    assert len(read) == 1, read


def test_the_fast_walk_yields_what_ast_walk_yields_but_expression_contexts():
    from celery_chain_lint.facts.roots import walk

    for path in sorted((ROOT / "celery_chain_lint").rglob("*.py"))[:20]:
        tree = ast.parse(path.read_bytes())
        expected = {id(node) for node in ast.walk(tree)
                    if not isinstance(node, ast.expr_context)}
        assert {id(node) for node in walk(tree)} == expected, path
