"""celery-chain-lint: finds Celery canvas misuse statically and confirms it on a real worker."""

__version__ = "0.1.0"
