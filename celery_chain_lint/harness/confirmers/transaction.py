"""CCL017 enqueue-in-transaction: skipped, with the reason: the race is with the project's own
database transaction, which shadow tasks do not have."""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    confirms,
    skipped,
)


@confirms("CCL017")
def confirm_enqueue_in_transaction(finding: Dict[str, Any], context) -> Any:
    return skipped("the race is with the project's database transaction: shadow tasks have no "
                   "database to read, so a run cannot show it")
