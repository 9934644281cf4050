"""The rule catalogue: one module per rule, registered here in code order."""
from __future__ import annotations

from typing import Dict, List, Type

from celery_chain_lint.rules.base import Rule
from celery_chain_lint.rules.ccl001_result_not_accepted import ResultNotAccepted
from celery_chain_lint.rules.ccl002_bad_arguments import BadArguments

ALL_RULES: List[Type[Rule]] = [ResultNotAccepted, BadArguments]
RULES_BY_CODE: Dict[str, Type[Rule]] = {rule.code: rule for rule in ALL_RULES}
