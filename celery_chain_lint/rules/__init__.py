"""The rule catalogue: one module per rule, registered here in code order."""
from __future__ import annotations

from typing import Dict, List, Type

from celery_chain_lint.rules.base import Rule
from celery_chain_lint.rules.ccl001_result_not_accepted import ResultNotAccepted
from celery_chain_lint.rules.ccl002_bad_arguments import BadArguments
from celery_chain_lint.rules.ccl003_independent_chain import IndependentChain
from celery_chain_lint.rules.ccl004_large_result import LargeResult
from celery_chain_lint.rules.ccl005_missing_retry import MissingRetry
from celery_chain_lint.rules.ccl006_wait_in_task import WaitInTask
from celery_chain_lint.rules.ccl007_called_not_signature import CalledNotSignature
from celery_chain_lint.rules.ccl008_chord_without_results import ChordWithoutResults
from celery_chain_lint.rules.ccl009_errback_receives_task_id import ErrbackReceivesTaskId
from celery_chain_lint.rules.ccl010_group_callback import GroupCallback
from celery_chain_lint.rules.ccl011_single_member_group import SingleMemberGroup
from celery_chain_lint.rules.ccl012_swallowed_retry import SwallowedRetry
from celery_chain_lint.rules.ccl013_options_as_arguments import OptionsAsArguments
from celery_chain_lint.rules.ccl014_canvas_never_applied import CanvasNeverApplied
from celery_chain_lint.rules.ccl015_not_a_task import NotATask
from celery_chain_lint.rules.ccl016_task_returns_canvas import TaskReturnsCanvas
from celery_chain_lint.rules.ccl017_enqueue_in_transaction import EnqueueInTransaction
from celery_chain_lint.rules.ccl018_json_unserializable import JsonUnserializable

ALL_RULES: List[Type[Rule]] = [ResultNotAccepted, BadArguments, IndependentChain, LargeResult,
                               MissingRetry, WaitInTask, CalledNotSignature,
                               ChordWithoutResults, ErrbackReceivesTaskId, GroupCallback,
                               SingleMemberGroup, SwallowedRetry, OptionsAsArguments,
                               CanvasNeverApplied, NotATask, TaskReturnsCanvas,
                               EnqueueInTransaction, JsonUnserializable]
RULES_BY_CODE: Dict[str, Type[Rule]] = {rule.code: rule for rule in ALL_RULES}
