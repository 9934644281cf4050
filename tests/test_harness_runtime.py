"""``verify`` on real workers: every positive fixture confirmed, every negative clean, on the
embedded default, on Redis (broker and backend) and on RabbitMQ (broker); and the harness under
faults: a hung workflow, a worker that dies or is killed, a broker that goes away mid-run.

Redis and RabbitMQ tests skip, saying why, when the service is not answering
(``scripts/ensure-services`` starts them in CI). Redis tests use database 11 and touch only the
keys of their own run (plus one foreign message they put there and remove).

The runs on a broker (every positive on the embedded default, in two halves; each rule's first
positive on Redis and on RabbitMQ; the negatives on each) start when the module starts, in four
processes of their own (``harness_lanes.py``, the same calls as before): they mostly wait, so
they overlap, and the fault tests (first in the file) run meanwhile in this process. The tests
of those runs come last and assert on what each run returned.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("celery")

try:
    from harness_lanes import Lane
except ImportError:  # tests/ became a package
    from tests.harness_lanes import Lane

from celery_chain_lint import engine  # noqa: E402
from celery_chain_lint.harness import confirmers  # noqa: E402
from celery_chain_lint.harness.environment import InfrastructureError  # noqa: E402
from celery_chain_lint.harness.verify import Options, Verifier  # noqa: E402

pytestmark = [pytest.mark.runtime,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
REDIS_URL = "redis://127.0.0.1:6379/11"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"

# Findings a run cannot show, each skipped with this reason (documented in the confirmers).
ALLOWED_SKIPS = {
    "CCL004": "--execute",  # measuring a result runs the user's code: opt-in
    "CCL017": "database",  # the race is with the user's database
    "CCL026": "Redis broker",  # the redelivery is kombu's Redis transport's (on Redis: run)
}
# Per backend, what the backend tolerates (reported not-reproduced with that reason).
TOLERATED = {("redis", "CCL008"): "tolerates it"}


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str) -> None:
    port = {"redis": 6379, "rabbitmq": 5672}[service]
    if not port_open(port):
        pytest.skip(f"{service} is not answering on 127.0.0.1:{port} "
                    "(scripts/ensure-services starts it)")


def worker_processes(marker: str = "celery_chain_lint.harness.worker"):
    """Command lines of live harness worker processes (any run, or one run's directory)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and "celery_chain_lint.harness.worker" in cmdline and state != "Z":
            found.append(f"{entry}: {cmdline}")
    return found


def assert_no_workers(workdir: str) -> None:
    leftover = worker_processes(workdir)
    assert not leftover, f"worker processes left behind: {leftover}"


@pytest.fixture(scope="module")
def fixture_findings():
    findings = [f.to_json() for f in engine.check([str(FIXTURES.relative_to(ROOT))]).findings]
    assert findings
    return findings


@pytest.fixture(scope="module")
def findings_per_code(fixture_findings):
    """The first positive of each code in the fixtures' order: what the Redis and RabbitMQ
    runs replay. Every positive is replayed on the embedded broker; the other two prove each
    rule's confirmation on a real server, in a tenth of the time (the suite stays under ten
    minutes)."""
    by_code = {}
    for finding in fixture_findings:
        by_code.setdefault(finding["code"], finding)
    return list(by_code.values())


def verify(findings, **options):
    verifier = Verifier(Options(**options))
    started = time.monotonic()
    results = verifier.run(findings)
    return results, verifier, time.monotonic() - started


def check_verdicts(results, backend: str):
    problems = []
    for result in results:
        code, status, reason = result["code"], result["status"], result["reason"]
        where = f"{result['path']}:{result['line']} {code}"
        if status == "confirmed":
            assert result["evidence"], where
            continue
        if status == "skipped" and ALLOWED_SKIPS.get(code, "\0") in reason:
            continue
        if status == "skipped" and code not in confirmers.load() and \
                "no runtime confirmation exists" in reason:
            continue  # a rule newer than the harness: reported as such
        tolerated = TOLERATED.get((backend, code))
        if status == "not-reproduced" and tolerated and tolerated in reason:
            continue
        problems.append(f"{where}: {status}: {reason}")
    assert not problems, "\n".join(problems)


def check_negatives(out):
    """What replay_clean(negative_workflows(), Options(...)) returned, in a lane."""
    assert out["count"] > 50
    outcomes = out["outcomes"]
    failed = [f"{o['path']} {o['scope']}: {o['detail']} ({o.get('canvas')})"
              for o in outcomes if o["status"] == "failed"]
    assert not failed, "negative fixtures that did not run clean:\n" + "\n".join(failed)
    clean = [o for o in outcomes if o["status"] == "clean"]
    assert len(clean) >= 0.8 * len(outcomes), [o for o in outcomes if o["status"] != "clean"]


# Every positive on the embedded default, split into this many runs at once (round robin: the
# slow confirmations, CCL012's and CCL027's, are spread over them).
EMBEDDED_SHARDS = 2


class Lanes:
    def __init__(self):
        self.lanes = []
        self.foreign = {}  # backend -> the foreign message put there before its run started

    def result(self, part: str):
        for lane in self.lanes:
            if part in lane.parts:
                return lane.result(part)
        # Not started: its service was not answering when the module started.
        pytest.skip(f"{part}: the service was not answering on 127.0.0.1 when the module "
                    "started (scripts/ensure-services starts it)")


@pytest.fixture(scope="module", autouse=True)
def lanes(request, tmp_path_factory, fixture_findings, findings_per_code):
    """Start the runs on a broker that this session's selected tests of this module assert on,
    in four processes (``harness_lanes.py``): the embedded positives in two halves, the
    negatives on each backend one after the other, each rule on Redis then on RabbitMQ.
    (More at once would make the runs compete for two cores: CCL003's confirmation times a
    chain against a group.) Foreign messages go on Redis and RabbitMQ before the runs start."""
    selected = {getattr(item, "originalname", item.name) for item in request.session.items
                if item.path == request.path}
    directory = tmp_path_factory.mktemp("lanes")
    on_redis = {"broker": REDIS_URL, "backend": REDIS_URL}
    on_rabbitmq = {"broker": AMQP_URL}
    redis_up, rabbitmq_up = port_open(6379), port_open(5672)
    embedded, negatives, brokers = [], [], []
    if "test_embedded_confirms_every_positive_fixture" in selected:
        for shard in range(EMBEDDED_SHARDS):
            embedded.append([{"name": f"embedded-{shard}", "kind": "verify",
                              "findings": fixture_findings[shard::EMBEDDED_SHARDS]}])
    if "test_embedded_runs_negatives_clean" in selected:
        negatives.append({"name": "embedded-negatives", "kind": "negatives"})
    if "test_redis_runs_negatives_clean" in selected and redis_up:
        negatives.append({"name": "redis-negatives", "kind": "negatives", "options": on_redis})
    if "test_rabbitmq_runs_negatives_clean" in selected and rabbitmq_up:
        negatives.append({"name": "rabbitmq-negatives", "kind": "negatives",
                          "options": on_rabbitmq})
    if "test_redis_confirms_each_rule_and_leaves_nothing" in selected and redis_up:
        brokers.append({"name": "redis", "kind": "verify", "findings": findings_per_code,
                        "options": on_redis})
    if "test_rabbitmq_confirms_each_rule_and_leaves_nothing" in selected and rabbitmq_up:
        brokers.append({"name": "rabbitmq", "kind": "verify", "findings": findings_per_code,
                        "options": on_rabbitmq})
    found = Lanes()
    try:
        if any(part["name"] == "redis" for part in brokers):
            client = _redis()
            try:
                foreign = json.dumps({"id": f"foreign-{uuid.uuid4()}", "body": "not ours"})
                client.lpush("celery", foreign)
                found.foreign["redis"] = foreign
            finally:
                client.close()
        if any(part["name"] == "rabbitmq" for part in brokers):
            found.foreign["rabbitmq"] = _foreign_on_rabbitmq()
        for index, parts in enumerate([*embedded, negatives, brokers]):
            if parts:
                found.lanes.append(Lane(f"lane-{index}", parts, directory))
        yield found
    finally:
        for lane in found.lanes:  # only one that a failed or interrupted test left running
            lane.kill()


# ---- faults -----------------------------------------------------------------------------


def _pick(findings, path_end, line, code):
    return next(f for f in findings if f["path"].endswith(path_end) and f["line"] == line
                and f["code"] == code)


@pytest.fixture(scope="module")
def two_findings(fixture_findings):
    """add(1, 2) | log_done("completed"), then price_order(7) | send_receipt(...)."""
    return [_pick(fixture_findings, "shop/checkout.py", 40, "CCL001"),
            _pick(fixture_findings, "shop/checkout.py", 74, "CCL001")]


def test_a_hung_workflow_times_out_and_the_next_finding_still_runs(two_findings):
    hung_task = "shop.tasks.billing.add"
    results, verifier, elapsed = verify(two_findings, timeout=1.5,
                                        inject={hung_task: {"hang": 120}})
    first, second = results
    assert first["status"] == "skipped" and "did not finish within 1.5s" in first["reason"]
    assert any("worker restarted" in n for n in first["evidence"].get("notes", []))
    assert second["status"] == "confirmed", second["reason"]
    assert elapsed < 40
    assert_no_workers(verifier.env.workdir)


def test_a_worker_that_dies_is_reported_and_replaced(two_findings):
    results, verifier, _ = verify(two_findings, inject={"shop.tasks.billing.add": {"exit": 7}})
    first, second = results
    assert first["status"] == "skipped"
    assert "worker exited with code 7" in first["reason"]
    assert second["status"] == "confirmed", second["reason"]
    assert_no_workers(verifier.env.workdir)


def test_a_worker_killed_from_outside_is_reported_and_replaced(two_findings):
    verifier = Verifier(Options(inject={"shop.tasks.billing.add": {"sleep": 3}}))
    killed = []

    ready = Path(verifier.env.workdir) / "session-0" / "worker-1.ready"

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ready.exists():
            time.sleep(0.05)
        time.sleep(1.0)  # the first finding's add() is sleeping now
        pid = json.loads(ready.read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    results = verifier.run(two_findings)
    thread.join(5)
    assert killed
    first, second = results
    assert first["status"] == "skipped" and "killed by SIGKILL" in first["reason"], first
    assert second["status"] == "confirmed", second["reason"]
    assert_no_workers(verifier.env.workdir)


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of our own, which the test may stop and start (the shared one stays up)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def start():
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if port_open(port):
                return process
            time.sleep(0.05)
        process.kill()
        pytest.skip("a private redis-server did not start")

    state = {"process": start(), "start": start, "port": port}
    yield state
    state["process"].kill()
    state["process"].wait(5)


def _when_ready(verifier: Verifier, delay: float) -> None:
    """Wait until the run's first worker consumes, then ``delay`` more seconds."""
    ready = Path(verifier.env.workdir) / "session-0" / "worker-1.ready"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ready.exists():
        time.sleep(0.05)
    time.sleep(delay)


def test_the_broker_going_away_mid_run(two_findings, private_redis):
    url = f"redis://127.0.0.1:{private_redis['port']}/0"
    verifier = Verifier(Options(broker=url, backend=url, outage_grace=20,
                                inject={"shop.tasks.billing.add": {"sleep": 1.5}}))

    def outage():
        _when_ready(verifier, 0.5)  # add() of the first finding is sleeping
        private_redis["process"].kill()
        private_redis["process"].wait(5)
        time.sleep(1.5)
        private_redis["process"] = private_redis["start"]()

    thread = threading.Thread(target=outage, daemon=True)
    started = time.monotonic()
    thread.start()
    results = verifier.run(two_findings)
    thread.join(10)
    elapsed = time.monotonic() - started
    print("\n", [(r["status"], r["reason"]) for r in results])
    assert [r["status"] for r in results].count("confirmed") >= 1, \
        [(r["status"], r["reason"]) for r in results]
    for result in results:
        assert result["status"] in ("confirmed", "skipped"), result["reason"]
    assert elapsed < 60
    assert_no_workers(verifier.env.workdir)
    import redis

    client = redis.Redis.from_url(url)
    assert not list(client.scan_iter(match=f"*{verifier.env.run_id}*"))
    client.close()


def test_a_broker_that_does_not_come_back_is_an_error_within_its_bound(two_findings,
                                                                        private_redis):
    url = f"redis://127.0.0.1:{private_redis['port']}/0"
    verifier = Verifier(Options(broker=url, backend=url, outage_grace=2,
                                inject={"shop.tasks.billing.add": {"sleep": 1.5}}))

    def outage():
        _when_ready(verifier, 0.5)
        private_redis["process"].kill()

    threading.Thread(target=outage, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match="went away"):
        verifier.run(two_findings)
    assert time.monotonic() - started < 45
    assert_no_workers(verifier.env.workdir)


# ---- --execute --------------------------------------------------------------------------


def test_execute_measures_a_real_payload(tmp_path):
    project = tmp_path / "bigdata"
    project.mkdir()
    payload = tmp_path / "export.csv"
    payload.write_text("id,amount\n" + "".join(f"{i},{i * 3}\n" for i in range(20000)))
    (project / "__init__.py").write_text("")
    (project / "tasks.py").write_text(
        "from celery import Celery, chain\n"
        "app = Celery('bigdata', broker='memory://', backend='cache+memory://')\n\n"
        "@app.task\n"
        "def read_export(path):\n"
        "    with open(path) as fh:\n"
        "        data = fh.read()\n"
        "    return data\n\n"
        "@app.task\n"
        "def count_lines(text):\n"
        "    return text.count('\\n')\n\n"
        "def run():\n"
        f"    return chain(read_export.s({str(payload)!r}), count_lines.s()).delay()\n")
    findings = [f.to_json() for f in engine.check([str(project)]).findings]
    large = [f for f in findings if f["code"] == "CCL004"]
    assert large, findings
    skipped_results, _, _ = verify(large)
    assert skipped_results[0]["status"] == "skipped" and "--execute" in skipped_results[0]["reason"]
    results, verifier, _ = verify(large, execute=True)
    result = results[0]
    assert result["status"] == "confirmed", result["reason"]
    size = result["evidence"]["sizes"]["result_bytes"]
    assert payload.stat().st_size <= size < payload.stat().st_size * 1.2
    print(f"\n--execute: {result['reason']}")
    assert_no_workers(verifier.env.workdir)


# ---- the command line, end to end -------------------------------------------------------


def _marker_stamp():
    marker = Path("/tmp/celery_chain_lint_IMPORTED")  # written by importing never_imported
    return marker.stat().st_mtime_ns if marker.exists() else None


def test_cli_verify_json_and_exit_codes(tmp_path):
    """verify (without --execute) never imports the analysed code: never_imported's import
    would write a marker file."""
    stamp = _marker_stamp()
    done = subprocess.run([sys.executable, "-m", "celery_chain_lint", "verify", "--format",
                           "json", "fixtures/never_imported"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)
    assert results and all({"status", "evidence", "backend", "reason"} <= set(r) for r in results)
    assert results[0]["status"] == "confirmed"
    assert "Traceback" not in done.stderr
    assert _marker_stamp() == stamp, "verify imported the analysed code"
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "ok.py").write_text("x = 1\n")
    done = subprocess.run([sys.executable, "-m", "celery_chain_lint", "verify", str(clean)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Verified 0 findings" in done.stdout


# ---- the embedded default ---------------------------------------------------------------


def test_embedded_confirms_every_positive_fixture(fixture_findings, lanes):
    shards = [lanes.result(f"embedded-{shard}") for shard in range(EMBEDDED_SHARDS)]
    results = [None] * len(fixture_findings)
    for shard, out in enumerate(shards):
        assert len(out["results"]) == len(fixture_findings[shard::EMBEDDED_SHARDS])
        results[shard::EMBEDDED_SHARDS] = out["results"]
    assert [(r["path"], r["line"], r["code"]) for r in results] == \
        [(f["path"], f["line"], f["code"]) for f in fixture_findings]
    check_verdicts(results, "embedded")
    confirmed = sum(r["status"] == "confirmed" for r in results)
    print(f"\nembedded: {confirmed}/{len(results)} confirmed in "
          f"{max(out['elapsed'] for out in shards):.1f}s ({EMBEDDED_SHARDS} runs at once)")
    assert confirmed >= 0.7 * len(results)
    sample = next(r for r in results if r["code"] == "CCL001" and r["status"] == "confirmed")
    assert sample["backend"]["celery"] and sample["backend"]["broker"].startswith("embedded")
    assert "TypeError" in sample["reason"] and sample["evidence"]["nodes"]
    timing = next((r for r in results if r["code"] == "CCL003"), None)
    if timing is not None:
        print(f"CCL003: {timing['evidence']['timings']}")
        assert timing["evidence"]["timings"]["ratio"] > 1.2
    for out in shards:
        assert_no_workers(out["workdir"])
        assert not Path(out["workdir"]).exists()


def test_embedded_runs_negatives_clean(lanes):
    check_negatives(lanes.result("embedded-negatives"))


# ---- Redis, broker and backend ----------------------------------------------------------


def _redis():
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)


def test_redis_confirms_each_rule_and_leaves_nothing(findings_per_code, lanes):
    require("redis")
    foreign = lanes.foreign.get("redis")  # put there before the run started
    client = _redis()
    try:
        out = lanes.result("redis")
        results = out["results"]
        assert len(results) == len(findings_per_code)
        check_verdicts(results, "redis")
        print(f"\nredis: {sum(r['status'] == 'confirmed' for r in results)}/{len(results)} "
              f"confirmed in {out['elapsed']:.1f}s")
        assert foreign.encode() in client.lrange("celery", 0, -1), "a foreign message vanished"
        leftover = list(client.scan_iter(match=f"*{out['run_id']}*"))
        assert not leftover, leftover
        assert_no_workers(out["workdir"])
    finally:
        if foreign is not None:
            client.lrem("celery", 0, foreign)
        client.close()


def test_redis_runs_negatives_clean(lanes):
    require("redis")
    check_negatives(lanes.result("redis-negatives"))


# ---- RabbitMQ, broker -------------------------------------------------------------------


def _foreign_on_rabbitmq():
    from kombu import Connection, Exchange, Queue

    body = {"id": f"foreign-{uuid.uuid4()}"}
    with Connection(AMQP_URL, connect_timeout=3) as connection:
        queue = Queue("celery", Exchange("celery", "direct"), "celery", durable=True)
        with connection.Producer() as producer:
            producer.publish(body, exchange=queue.exchange, routing_key="celery",
                             declare=[queue], serializer="json")
    return body


def _take_foreign_from_rabbitmq(body) -> bool:
    """True when the foreign message is still on ``celery`` (it is then removed; other
    messages found on the way are put back)."""
    from kombu import Connection

    found = False
    with Connection(AMQP_URL, connect_timeout=3) as connection:
        queue = connection.SimpleQueue("celery", serializer="json")
        others = []
        try:
            for _ in range(1000):
                try:
                    message = queue.get(block=True, timeout=1)
                except queue.Empty:
                    break
                if message.payload == body:
                    message.ack()
                    found = True
                    break
                others.append(message)
        finally:
            for message in others:
                message.requeue()
            queue.close()
    return found


def _rabbitmq_has(queue_name: str) -> bool:
    from kombu import Connection

    with Connection(AMQP_URL, connect_timeout=3) as connection:
        channel = connection.channel()
        try:
            channel.queue_declare(queue_name, passive=True)
            return True
        except Exception:  # noqa: BLE001 - NOT_FOUND
            return False


def test_rabbitmq_confirms_each_rule_and_leaves_nothing(findings_per_code, lanes):
    require("rabbitmq")
    body = lanes.foreign.get("rabbitmq")  # put there before the run started
    try:
        out = lanes.result("rabbitmq")
        results = out["results"]
        assert len(results) == len(findings_per_code)
        check_verdicts(results, "rabbitmq")
        print(f"\nrabbitmq: {sum(r['status'] == 'confirmed' for r in results)}/{len(results)} "
              f"confirmed in {out['elapsed']:.1f}s")
        assert not _rabbitmq_has(out["queue"]), "the run's queue was not deleted"
        assert_no_workers(out["workdir"])
    finally:
        if body is not None:
            assert _take_foreign_from_rabbitmq(body), "a foreign message on 'celery' vanished"


def test_rabbitmq_runs_negatives_clean(lanes):
    require("rabbitmq")
    check_negatives(lanes.result("rabbitmq-negatives"))
