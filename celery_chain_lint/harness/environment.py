"""Where a verify run happens: broker, result backend, its own queue, and the cleanup.

The embedded default needs no server: kombu's file-system transport and Celery's file-system
result backend in a private temporary directory. ``--broker``/``--backend`` take any Celery
URL. Either way the run owns everything it touches:

- one queue (and exchange, and routing key) named ``ccl-verify-<run id>``, and a second one,
  ``ccl-verify-<run id>.alt``, for replays that route a task elsewhere; the worker consumes only
  those, with remote control, events, gossip and mingle off, so no other queue, fanout
  exchange or message of the user is touched, and nothing is purged but those queues;
- on Redis, every key the broker and the result backend write carries the prefix
  ``ccl-verify-<run id>:`` (kombu's and Celery's ``global_keyprefix``), so the cleanup deletes
  exactly its own keys, including the transport's ``unacked`` bookkeeping;
- on other brokers the queue and the exchange are deleted after the run.

Connectivity is checked before anything starts, each check bounded to a few seconds.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional


class InfrastructureError(Exception):
    """The broker, the backend or the worker is not usable: exit code 2."""


class BrokerTrouble(Exception):
    """A run could not talk to the broker or the result backend (it went away mid-run)."""


def is_connection_error(error: BaseException) -> bool:
    """Errors that say "the broker or the backend is not answering", whatever the client."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    modules = {cls.__module__.split(".")[0] for cls in type(error).__mro__}
    return bool(names & {"OperationalError", "ConnectionError", "RecoverableConnectionError",
                         "ConnectionForced", "BusyLoadingError", "TimeoutError"}
                and modules & {"kombu", "redis", "amqp", "celery", "builtins"})


def sanitize(url: Optional[str]) -> Optional[str]:
    if url is None:
        return None
    try:
        from kombu.utils.url import maybe_sanitize_url

        return maybe_sanitize_url(url)
    except Exception:  # noqa: BLE001 - only for display
        return url


def _scheme(url: Optional[str]) -> str:
    if not url:
        return ""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def bounded(action: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run ``action`` in a daemon thread; an InfrastructureError when it takes too long."""
    box: Dict[str, Any] = {}

    def target():
        try:
            box["value"] = action()
        except BaseException as exc:  # noqa: BLE001 - reported below
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"ccl-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise InfrastructureError(f"{what}: no answer within {timeout:g}s")
    if "error" in box:
        error = box["error"]
        raise InfrastructureError(f"{what}: {type(error).__name__}: {error}") from error
    return box.get("value")


@dataclass
class Environment:
    broker: Optional[str] = None  # None: embedded
    backend: Optional[str] = None  # None: embedded (file-system, in the run directory)
    connect_timeout: float = 3.0
    keep_workdir: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    workdir: str = ""
    notes: List[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.workdir:
            self.workdir = tempfile.mkdtemp(prefix=f"ccl-verify-{self.run_id}-")
        self.queue = f"ccl-verify-{self.run_id}"
        # A second queue the worker also consumes: a replay that routes a task elsewhere
        # (CCL025: ``queue=`` given to a chain) routes it there, and sees where the rest goes.
        self.alt_queue = f"{self.queue}.alt"
        # Queues of sessions with settings of their own (CCL026, CCL027), removed likewise.
        self.extra_queues: List[str] = []
        self.prefix = f"{self.queue}:"

    def queues(self) -> List[str]:
        """Every queue of the run: its own, the second one, and the extra sessions'."""
        return [self.queue, self.alt_queue] + [q for q in self.extra_queues
                                               if q not in (self.queue, self.alt_queue)]

    # ---- description ----

    @property
    def embedded_broker(self) -> bool:
        return self.broker is None

    @property
    def embedded_backend(self) -> bool:
        return self.backend is None

    @property
    def broker_url(self) -> str:
        return self.broker or "filesystem://"

    @property
    def backend_url(self) -> str:
        if self.backend is not None:
            return self.backend
        from celery_chain_lint.harness.filebackend import backend_url

        return backend_url(self._dir("results"))

    @property
    def backend_kind(self) -> str:
        """A short name for the kind of backend: file, redis, database, cache, rpc..."""
        if self.backend is None:
            return "file"
        scheme = _scheme(self.backend)
        if self.backend.startswith("db+") or scheme in ("db", "database"):
            return "database"
        if self.backend.startswith("cache+") or scheme in ("cache", "memcache", "memcached"):
            return "cache"
        if scheme in ("redis", "rediss", "sentinel"):
            return "redis"
        return scheme or "none"

    def describe(self) -> Dict[str, Any]:
        import celery
        import kombu

        return {
            "broker": "embedded (kombu filesystem transport)" if self.embedded_broker
            else sanitize(self.broker),
            "backend": "embedded (file-system result backend)" if self.embedded_backend
            else sanitize(self.backend),
            "backend_kind": self.backend_kind,
            "queue": self.queue,
            "celery": celery.__version__,
            "kombu": kombu.__version__,
        }

    # ---- configuration of the shadow app ----

    def _dir(self, *parts: str) -> str:
        path = os.path.join(self.workdir, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def broker_transport_options(self) -> Dict[str, Any]:
        scheme = _scheme(self.broker_url)
        if self.embedded_broker:
            messages = self._dir("broker", "messages")
            # Consumed messages are moved to ``processed`` (inside the run's directory, removed
            # at the end) rather than to the system's temporary directory.
            return {"data_folder_in": messages, "data_folder_out": messages,
                    "control_folder": self._dir("broker", "control"),
                    "processed_folder": self._dir("broker", "processed"),
                    "store_processed": True, "polling_interval": 0.02}
        if scheme in ("redis", "rediss"):
            return {"global_keyprefix": self.prefix, "polling_interval": 0.05,
                    "socket_connect_timeout": self.connect_timeout,
                    "socket_timeout": 10, "max_connections": 20}
        return {}

    def conf(self) -> Dict[str, Any]:
        conf: Dict[str, Any] = {
            "broker_url": self.broker_url,
            "result_backend": self.backend_url,
            "broker_transport_options": self.broker_transport_options(),
            "task_default_queue": self.queue,
            "task_default_exchange": self.queue,
            "task_default_exchange_type": "direct",
            "task_default_routing_key": self.queue,
            "task_routes": None,
            "task_create_missing_queues": True,
            "task_serializer": "json",
            "result_serializer": "json",
            "accept_content": ["json"],
            "result_accept_content": ["json"],
            "worker_enable_remote_control": False,
            "worker_send_task_events": False,
            "task_send_sent_event": False,
            "worker_prefetch_multiplier": 1,
            "worker_hijack_root_logger": False,
            "worker_redirect_stdouts": False,
            "broker_connection_retry_on_startup": False,
            "broker_connection_timeout": self.connect_timeout,
            "broker_connection_max_retries": 2,
            "broker_channel_error_retry": False,
            "broker_heartbeat": 0,
            "result_chord_retry_interval": 0.2,
            "result_expires": 3600,  # should a cleanup ever fail, the keys still expire
            "result_backend_always_retry": False,
            "redis_socket_connect_timeout": self.connect_timeout,
            "redis_socket_timeout": 10,
            "redis_retry_on_timeout": False,
            # A publish on a connection that dropped reconnects once, quickly; a broker that is
            # gone fails the publish within about a second.
            "task_publish_retry": True,
            "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0,
                                          "interval_step": 0.3, "interval_max": 0.5},
            "worker_cancel_long_running_tasks_on_connection_loss": True,
            "enable_utc": True,
        }
        if self.embedded_broker:
            from celery_chain_lint.harness.fstransport import TRANSPORT

            conf["broker_transport"] = TRANSPORT
        if self.backend_kind == "redis":
            conf["result_backend_transport_options"] = {"global_keyprefix": self.prefix}
        return conf

    # ---- pre-flight ----

    def preflight(self) -> None:
        """Fail within seconds, with a clear message, when the broker or backend is down."""
        timeout = self.connect_timeout
        if self.backend_kind == "rpc":
            raise InfrastructureError(
                "--backend rpc:// cannot be used: the harness reads the state of every task of a "
                "workflow, and rpc:// only delivers a result to the client that sent the task "
                "(the worker sends a chain's later links). Use the default (embedded) backend or "
                "a Redis or database backend; CCL008 findings about rpc:// are confirmed with "
                "any of them")
        if not self.embedded_broker:
            bounded(self._check_broker, timeout * 2 + 1, f"broker {sanitize(self.broker)}")
        if not self.embedded_backend:
            bounded(self._check_backend, timeout * 2 + 1, f"result backend {sanitize(self.backend)}")

    def _check_broker(self) -> None:
        from kombu import Connection

        with Connection(self.broker_url, connect_timeout=self.connect_timeout,
                        transport_options=self.broker_transport_options()) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=self.connect_timeout)
            channel = connection.channel()
            client = getattr(channel, "client", None)
            if client is not None and hasattr(client, "ping"):
                client.ping()
            channel.close()

    def _check_backend(self) -> None:
        from celery import Celery

        app = Celery("ccl-verify-preflight", set_as_current=False)
        app.conf.update(self.conf())
        try:
            backend = app.backend
            client = getattr(backend, "client", None)
            if self.backend_kind == "redis" and client is not None:
                client.ping()
            else:
                backend.get_task_meta(f"ccl-preflight-{self.run_id}")
        finally:
            app.close()

    # ---- cleanup ----

    def purge_queue(self) -> None:
        """Drop every message left on the run's own queue (and only there)."""
        if self.embedded_broker:
            folder = os.path.join(self.workdir, "broker", "messages")
            for name in os.listdir(folder) if os.path.isdir(folder) else ():
                try:
                    os.unlink(os.path.join(folder, name))
                except OSError:
                    pass
            return
        bounded(self._purge_remote, self.connect_timeout * 2 + 1, "purge the run's queue")

    def _purge_remote(self) -> None:
        from kombu import Connection, Exchange, Queue

        with Connection(self.broker_url, connect_timeout=self.connect_timeout,
                        transport_options=self.broker_transport_options()) as connection:
            channel = connection.channel()
            for name in self.queues():
                queue = Queue(name, Exchange(name, "direct"), name)(channel)
                try:
                    queue.purge()
                except Exception:  # noqa: BLE001 - the queue may not exist yet
                    channel = connection.channel()
            channel.close()

    def cleanup(self) -> List[str]:
        """Remove the run's queue, exchange and keys, and its directory. Returns problems."""
        problems = []
        if not self.embedded_broker:
            try:
                bounded(self._cleanup_broker, self.connect_timeout * 3 + 1, "broker cleanup")
            except InfrastructureError as error:
                problems.append(str(error))
        if not self.embedded_backend and self.backend_kind == "redis":
            try:
                bounded(lambda: self._delete_redis_keys(self.backend), self.connect_timeout * 3 + 1,
                        "result backend cleanup")
            except InfrastructureError as error:
                problems.append(str(error))
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def _cleanup_broker(self) -> None:
        if _scheme(self.broker) in ("redis", "rediss"):
            self._delete_redis_keys(self.broker)
            return
        from kombu import Connection, Exchange, Queue

        with Connection(self.broker_url, connect_timeout=self.connect_timeout,
                        transport_options=self.broker_transport_options()) as connection:
            channel = connection.channel()
            for name in self.queues():
                try:
                    Queue(name, Exchange(name, "direct"), name)(channel).delete()
                except Exception:  # noqa: BLE001 - already gone
                    channel = connection.channel()
                try:
                    Exchange(name, "direct")(channel).delete()
                except Exception:  # noqa: BLE001 - already gone
                    channel = connection.channel()

    def _delete_redis_keys(self, url: str) -> int:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=self.connect_timeout,
                                      socket_timeout=10)
        try:
            doomed = list(client.scan_iter(match=f"{self.queue}*", count=500))
            if doomed:
                client.delete(*doomed)
            return len(doomed)
        finally:
            client.close()

    def leftover_redis_keys(self, url: str) -> List[str]:
        """Keys of this run still on a Redis server (tests use it)."""
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=self.connect_timeout)
        try:
            return [k.decode() for k in client.scan_iter(match=f"*{self.run_id}*", count=500)]
        finally:
            client.close()
