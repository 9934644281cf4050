"""CCL005 missing-retry: a workflow task does network I/O with no bounded retry policy.

## What it does
Flags a task that a workflow depends on (a chain link with a step after it, a chord header
member, a member of a group followed by a step) when its body, or a project function it calls,
does network I/O (``requests``, ``httpx``, ``urllib.request``, ``aiohttp``, ``smtplib``, ``boto3``,
``redis``, ``socket``...; a client's methods count too, however the client is reached:
``session = requests.Session()``, ``with httpx.Client() as c: c.post(...)``) and the task has
no bounded retry policy: no ``autoretry_for``, no
``self.retry(...)``, no retry options inherited from its ``base=`` class, or ``max_retries=None``.
A task or helper wrapped by a retry decorator (tenacity's ``@retry``, ``backoff``, a project
decorator named like ``*retry*``) is not reported, nor a call inside a ``try`` whose ``except``
catches the error without re-raising it (the task handles the failure, the workflow goes on).
Reported at the task's ``def``.

## Why is this bad?
Networks fail transiently: a timeout, a refused connection, a 503 during a deploy. A task
without a retry policy fails on the first such error, and a failed link stops its workflow: the
later links never run, a chord body never runs. Observed on Celery 5.7.0:
``fetch.s(url) | save.s()`` against a refused connection ran ``fetch`` once, ended FAILURE with
``URLError: <urlopen error ConnectionRefusedError(111, 'Connection refused')>`` and ``save``
never ran; with ``autoretry_for=(URLError,), max_retries=3`` the same task was attempted 4
times before failing. ``max_retries=None`` retries forever: with ``default_retry_delay=0`` the
task was attempted 755 times in 5 seconds and the chain stayed stuck in RETRY.

## Example
```python
@app.task
def fetch(url):
    return requests.get(url, timeout=10).json()["id"]

chain(fetch.s(url), save.s()).delay()
```

## How to fix
Retry transient errors a bounded number of times, with backoff:
```python
@app.task(autoretry_for=(requests.RequestException,), retry_backoff=True, max_retries=5)
def fetch(url):
    return requests.get(url, timeout=10).json()["id"]
```
or catch the error and call ``raise self.retry(exc=exc)`` in a ``bind=True`` task. The list of
network modules is configurable: ``[tool.celery-chain-lint.missing-retry]``
``network-modules`` (replaces the list), ``extend-network-modules`` (adds your own client
modules, e.g. ``["mycorp.http"]``) and ``not-network-calls``.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import FunctionFacts
from celery_chain_lint.index.origins import in_modules, matches, origin
from celery_chain_lint.index.options import effective_options
from celery_chain_lint.index.symbols import FunctionSym, TaskSym, celery_name
from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import where
from celery_chain_lint.workflow.replay import NetworkCall, Replay, task_replay, workflow_replay

# Modules whose calls do network I/O (dotted prefixes).
NETWORK_MODULES = (
    "requests", "httpx", "urllib.request", "urllib3", "aiohttp", "http.client", "smtplib",
    "ftplib", "imaplib", "poplib", "telnetlib", "xmlrpc.client", "socket", "boto3", "botocore",
    "aioboto3", "redis", "paramiko", "pysftp", "grpc", "websocket", "websockets", "pycurl",
    "pika", "kafka", "confluent_kafka", "elasticsearch", "pymongo", "zeep", "suds", "stripe",
    "twilio", "sendgrid", "slack_sdk", "google.cloud", "azure.storage",
)
# Calls into those modules that do no I/O themselves: constructors of lazy clients, exceptions,
# configuration objects (shell wildcards).
NOT_NETWORK_CALLS = (
    "requests.Session", "requests.session", "requests.Request", "requests.adapters.*",
    "requests.auth.*", "requests.exceptions.*", "httpx.Client", "httpx.AsyncClient",
    "httpx.Timeout", "httpx.Limits", "httpx.Request", "httpx.*Error", "urllib3.PoolManager",
    "urllib3.util.*", "urllib3.exceptions.*", "urllib.request.Request",
    "urllib.request.build_opener", "aiohttp.ClientSession", "aiohttp.ClientTimeout",
    "aiohttp.TCPConnector", "boto3.client", "boto3.resource", "boto3.Session",
    "boto3.session.*", "botocore.config.*", "botocore.exceptions.*", "redis.Redis",
    "redis.StrictRedis", "redis.from_url", "redis.Redis.from_url", "redis.ConnectionPool*",
    "redis.exceptions.*", "socket.gethostname", "socket.getfqdn", "socket.socket",
    "socket.timeout", "socket.error", "*Exception", "*Error",
)
# Retry libraries: a call into one or a decorator from one handles retries itself.
RETRY_MODULES = ("tenacity", "backoff", "retrying", "retry", "stamina", "redo", "retry2")
# A decorator named like this retries: ``retry``, ``with_retries``, ``retrying_task``.
RETRY_NAME = re.compile(r"retr(?:y|ies|ying)", re.IGNORECASE)
HELPER_DEPTH = 2
# Exceptions a network error is not: an ``except`` clause catching only these handles nothing.
UNRELATED_EXCEPTIONS = ("ValueError", "KeyError", "TypeError", "IndexError", "AttributeError",
                        "LookupError", "JSONDecodeError", "UnicodeDecodeError",
                        "ZeroDivisionError", "StopIteration", "NotImplementedError",
                        "AssertionError", "DoesNotExist", "ObjectDoesNotExist")

_APP = """\
import requests
from celery import Celery, chain, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def save(data):
    return data
"""


class MissingRetry(Rule):
    code = "CCL005"
    name = "missing-retry"
    summary = "a task used in a workflow does network I/O with no bounded retry policy"
    options = {
        "network-modules": list(NETWORK_MODULES),
        "extend-network-modules": [],
        "not-network-calls": list(NOT_NETWORK_CALLS),
    }

    VALID = [
        # The app's default task class retries (its attributes are not read): unknown.
        _APP + 'class Retrying(app.Task):\n    autoretry_for = (requests.RequestException,)\n'
               '    max_retries = 5\n\napp.Task = Retrying\n\n'
               '@app.task\ndef fetch(url):\n    return requests.get(url).status_code\n'
               '\nchain(fetch.s("u"), save.s()).delay()\n',
        _APP.replace('backend="cache+memory://"', 'backend="cache+memory://", '
                     'task_cls="example.base:Retrying"')
        + '@app.task\ndef fetch(url):\n    return requests.get(url).status_code\n'
          '\nchain(fetch.s("u"), save.s()).delay()\n',
        _APP + '@app.task(autoretry_for=(requests.RequestException,), max_retries=5)\n'
               'def fetch(url):\n    return requests.get(url).status_code\n'
               '\nchain(fetch.s("u"), save.s()).delay()\n',
        _APP + '@app.task(bind=True)\ndef fetch(self, url):\n    try:\n'
               '        return requests.get(url).status_code\n'
               '    except requests.RequestException as exc:\n        raise self.retry(exc=exc)\n'
               '\nchain(fetch.s("u"), save.s()).delay()\n',
        _APP + '@app.task\ndef fetch(url):\n    return requests.get(url).status_code\n'
               '\nfetch.delay("u")\n',
        _APP + '@app.task\ndef lookup(d):\n    return d.get("key")\n'
               '\nchain(lookup.s({}), save.s()).delay()\n',
        _APP + 'from tenacity import retry, stop_after_attempt\n\n'
               '@app.task\n@retry(stop=stop_after_attempt(3))\n'
               'def fetch(url):\n    return requests.get(url).status_code\n'
               '\nchain(fetch.s("u"), save.s()).delay()\n',
    ]
    INVALID = [
        # Another app's task class replaced: this task's is Celery's.
        _APP + 'other = Celery("other")\n\nclass Retrying(other.Task):\n'
               '    autoretry_for = (requests.RequestException,)\n\nother.Task = Retrying\n\n'
               '@app.task\ndef fetch(url):  # expect: CCL005\n'
               '    return requests.get(url).status_code\n'
               '\nchain(fetch.s("u"), save.s()).delay()\n',
        _APP + '@app.task\ndef fetch(url):  # expect: CCL005\n'
               '    return requests.get(url, timeout=10).status_code\n'
               '\nchain(fetch.s("u"), save.s()).delay()\n',
        _APP + '@app.task(autoretry_for=(requests.RequestException,), max_retries=None)\n'
               'def fetch(url):  # expect: CCL005\n'
               '    return requests.get(url, timeout=10).status_code\n'
               '\nchord([fetch.s("a"), fetch.s("b")], save.s()).delay()\n',
        _APP + 'import smtplib\n\n@app.task\ndef mail(to):  # expect: CCL005\n'
               '    with smtplib.SMTP("localhost") as server:\n'
               '        server.sendmail("me", [to], "hi")\n    return to\n'
               '\n(group(mail.s("a"), mail.s("b")) | save.s()).delay()\n',
    ]

    def check(self, project):
        checker = _Checker(project.resolver,
                           tuple(self.option("network-modules"))
                           + tuple(self.option("extend-network-modules")),
                           tuple(self.option("not-network-calls")))
        for task in project.all_tasks:
            if task.function is None:
                continue
            uses = [use for use in project.uses_of(task) if use.followed]
            if not uses:
                continue
            # The policy first: it reads the task's options and own calls, while the search
            # for network I/O resolves every call and follows helpers into other modules.
            problem = _retry_problem(project.resolver, task)
            if problem is None:
                continue
            network = checker.network_call(task.function, task.module)
            if network is None:
                continue
            yield self._finding(task, network, problem, uses)

    def _finding(self, task, network, problem, uses):
        name, call = network
        use = uses[0]
        path = where(use.workflow, use.signature)
        used = f"{path}:{use.signature.span.line}" if use.signature.span is not None else path
        if problem == "forever":
            policy = "retries forever (max_retries=None): the workflow can stay stuck in RETRY"
        else:
            policy = ("has no retry policy: one transient error fails it and the workflow "
                      "stops there, the later steps never run")
        message = (f"{task.display} does network I/O ({name} at line "
                   f"{call.span.line if call.span else '?'}) and {policy} (used in the workflow "
                   f"at {used}); add autoretry_for=(...), retry_backoff=True and a finite "
                   f"max_retries, or raise self.retry(exc=exc)")
        replay = Replay(task=task_replay(task),
                        network=NetworkCall(name, call.span.line if call.span else None, problem),
                        workflows=tuple(workflow_replay(u.workflow) for u in uses[:3]))
        return self.finding(task.path, task.span, message, replay=replay)


class _Checker:
    def __init__(self, resolver, network_modules, not_network_calls):
        self.resolver = resolver
        self.network_modules = network_modules
        self.not_network_calls = not_network_calls

    def network_call(self, function: FunctionFacts, module: str,
                     depth: int = 0) -> Optional[Tuple[str, ir.Call]]:
        """The first network call in ``function`` or in a project function it calls, unless a
        retry decorator or a retry library handles it; None otherwise."""
        if self.wrapped(function, module):
            return None
        found = None
        for site in function.calls:
            call = site.call
            name = origin(self.resolver, call.func, module)
            if in_modules(name, RETRY_MODULES):
                return None  # ``for attempt in Retrying(...)``, ``retry_call(...)``
            if found is None and self.is_network(name) and not self.handled(site, module):
                found = (name, call)
        if found is not None or depth >= HELPER_DEPTH:
            return found
        for site in function.calls:
            if self.handled(site, module):
                continue
            symbol = self.resolver.resolve(site.call.func, module)
            if isinstance(symbol, FunctionSym):
                facts = self.resolver.modules[symbol.module].functions.get(symbol.qualname)
                if facts is not None and facts is not function:
                    inner = self.network_call(facts, symbol.module, depth + 1)
                    if inner is not None:
                        return inner[0], site.call
        return None

    def handled(self, site, module: str) -> bool:
        """Inside a ``try`` whose ``except`` catches network errors and does not re-raise: the
        task deals with the failure itself, the workflow goes on."""
        for handlers in site.handlers:
            for types, reraises in handlers:
                if reraises:
                    continue
                if not types:
                    return True  # a bare ``except:``
                for caught in types:
                    name = origin(self.resolver, caught, module) or ir.dotted_name(caught) or ""
                    if name.split(".")[-1] not in UNRELATED_EXCEPTIONS:
                        return True
        return False

    def is_network(self, name: Optional[str]) -> bool:
        if not in_modules(name, self.network_modules):
            return False
        return not matches(name, self.not_network_calls)

    def wrapped(self, function: FunctionFacts, module: str) -> bool:
        """A decorator that retries: tenacity/backoff, or any decorator named ``*retry*``."""
        for decorator in function.decorators:
            target = decorator.func if isinstance(decorator, ir.Call) else decorator
            name = origin(self.resolver, target, module) or ir.dotted_name(target) or ""
            if in_modules(name, RETRY_MODULES) or RETRY_NAME.search(name.split(".")[-1]):
                return True
        return False


def _retry_problem(resolver, task) -> Optional[str]:
    """"none" (no retry policy), "forever" (unbounded), or None (bounded, or not known)."""
    if task.open_options:
        return None
    options = effective_options(resolver, task)
    if options is None:
        return None  # a base class we cannot read
    max_retries = literal(options.get("max_retries"), MISSING) if "max_retries" in options \
        else 3
    if max_retries is MISSING:
        return None
    autoretry = options.get("autoretry_for")
    autoretry_value = literal(autoretry, MISSING) if autoretry is not None else ()
    has_autoretry = autoretry is not None and autoretry_value not in ((), [], None)
    retry_calls = _retry_calls(resolver, task)
    if retry_calls is None:
        return None
    if not has_autoretry and not retry_calls:
        return "none"
    bounded = has_autoretry and max_retries is not None
    for call in retry_calls:
        value = call.keyword("max_retries")
        if value is None:
            bounded = bounded or max_retries is not None
        else:
            limit = literal(value, MISSING)
            if limit is MISSING or limit is not None:
                bounded = True
    return None if bounded else "forever"


def _retry_calls(resolver, task) -> Optional[List[ir.Call]]:
    """``self.retry(...)`` / ``task.retry(...)`` / ``current_task.retry(...)`` in the body."""
    function = task.function
    bound_self = task.self_name
    calls = []
    for site in function.calls:
        func = site.call.func
        if not (isinstance(func, ir.Attribute) and func.attr == "retry"):
            continue
        receiver = func.value
        if isinstance(receiver, ir.Opaque) and receiver.kind == "local" \
                and receiver.text == bound_self:
            calls.append(site.call)
            continue
        symbol = resolver.resolve(receiver, task.module)
        if isinstance(symbol, TaskSym) or celery_name(symbol) == "current_task" or \
                (origin(resolver, receiver, task.module) or "").endswith("current_task"):
            calls.append(site.call)
    return calls
