"""The runtime harness behind ``celery-chain-lint verify``.

``check`` reports what Celery will do; the harness proves it. For every finding it rebuilds the
flagged workflow from the finding's ``replay`` data on *shadow tasks* (same registered names,
same parameter lists, same ``bind``/``typing``/``ignore_result``/retry options, bodies generated
by us) on an isolated Celery app, runs it on a real worker in its own process, and reports what
Celery did: ``confirmed``, ``not-reproduced`` or ``skipped``, with the evidence.

The user's code is never imported, except by ``--execute`` (CCL004), which says so.

Modules:

- ``shadow``: generates the shadow tasks and their behaviours (sleep, raise once, wait on a
  result...) on a Celery app; used by the client and by the worker process alike.
- ``environment``: broker and result backend (embedded default or the user's URLs), pre-flight
  checks with short timeouts, and cleanup of everything the run created.
- ``worker``: the worker subprocess (entry point and the parent-side handle).
- ``replayer``: rebuilds a canvas from replay data, applies it and observes every node.
- ``confirmers``: one module per rule family, registered by code.
- ``verify``: the orchestration, and the text/JSON reports.

Celery is imported only here, and only when ``verify`` runs.
"""
