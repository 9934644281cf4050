"""How a worker calls errbacks, observed on a real one (Redis), as ``workflow/model.py`` models it.

``errback_invocation`` says: a function task of more than one positional parameter is called
inline as ``errback(request, exc, traceback)``, a one-parameter one is sent as a task with the
failed task's id, and an immutable errback gets neither (``Signature.__call__`` merges nothing
into ``.si()``). The analyser's CCL002/CCL009 findings on errbacks rest on that: each case is
run here on a worker process of its own and what the errback received is read back.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

redis = pytest.importorskip("redis")

pytestmark = pytest.mark.runtime

APP = """\
import json
import redis
from celery import Celery

app = Celery("errbacks", broker="redis://127.0.0.1:6379/12",
             backend="redis://127.0.0.1:6379/12")
app.conf.task_default_queue = {queue!r}
KEY = {key!r}


@app.task
def fail():
    raise ValueError("boom")


@app.task
def two(message, label="x"):
    redis.Redis(db=12).rpush(KEY, json.dumps(["two", repr(message), label]))


@app.task
def one(message):
    redis.Redis(db=12).rpush(KEY, json.dumps(["one", repr(message)]))
"""


def _received(tmp_path, errbacks: str) -> list:
    """Run ``fail`` with each of ``errbacks`` (source of signatures), and what they got."""
    try:
        client = redis.Redis(db=12, socket_connect_timeout=2)
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    key, queue = f"ccl-errbacks-{uuid.uuid4().hex}", f"ccl-errbacks-{uuid.uuid4().hex}"
    (tmp_path / "errapp.py").write_text(APP.format(key=key, queue=queue))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "errapp", "worker", "-P", "solo",
         "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        script = textwrap.dedent(f"""
            from errapp import fail, one, two
            for errback in [{errbacks}]:
                fail.apply_async(link_error=errback)
        """)
        subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True,
                       timeout=60)
        expected = errbacks.count("),") + 1
        deadline = time.monotonic() + 30
        while client.llen(key) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        return sorted(json.loads(item) for item in client.lrange(key, 0, -1))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        client.delete(key)


def test_immutable_errbacks_get_their_own_arguments_only(tmp_path):
    received = _received(tmp_path, 'two.si("own", label="si"), one.si("mine")')
    assert received == [["one", "'mine'"], ["two", "'own'", "si"]]


def test_mutable_errbacks_get_the_id_or_the_request(tmp_path):
    """``two.s(label=...)``: one positional parameter left, so sent with the failed task's id
    (a UUID string); ``one.s()``: the same."""
    received = _received(tmp_path, 'two.s(label="s"), one.s()')
    assert [entry[0] for entry in received] == ["one", "two"]
    for entry in received:
        uuid.UUID(entry[1].strip("'"))  # the failed task's id, not an exception
