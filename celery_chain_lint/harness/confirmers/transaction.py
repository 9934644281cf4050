"""CCL017 enqueue-in-transaction: skipped, with the reason: the race is with the project's own
database transaction, which shadow tasks do not have."""
from __future__ import annotations

from typing import Any

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirms,
    skipped,
)


@confirms("CCL017", needs_replay=False)
def confirm_enqueue_in_transaction(claim: Claim, context) -> Any:
    return skipped("the race is with the project's database transaction: shadow tasks have no "
                   "database to read, so a run cannot show it")
