"""The rule catalogue: one module per rule, registered here in code order."""
from __future__ import annotations

from typing import Dict, List, Type

from celery_chain_lint.rules.base import Rule

# Module and class of each rule, in code order. The modules are imported on first use of
# ALL_RULES (PEP 562): a run whose findings come from the cache never needs them, and they
# import the whole analyser.
_CATALOGUE = (
    ("ccl001_result_not_accepted", "ResultNotAccepted"),
    ("ccl002_bad_arguments", "BadArguments"),
    ("ccl003_independent_chain", "IndependentChain"),
    ("ccl004_large_result", "LargeResult"),
    ("ccl005_missing_retry", "MissingRetry"),
    ("ccl006_wait_in_task", "WaitInTask"),
    ("ccl007_called_not_signature", "CalledNotSignature"),
    ("ccl008_chord_without_results", "ChordWithoutResults"),
    ("ccl009_errback_receives_task_id", "ErrbackReceivesTaskId"),
    ("ccl010_group_callback", "GroupCallback"),
    ("ccl011_single_member_group", "SingleMemberGroup"),
    ("ccl012_swallowed_retry", "SwallowedRetry"),
    ("ccl013_options_as_arguments", "OptionsAsArguments"),
    ("ccl014_canvas_never_applied", "CanvasNeverApplied"),
    ("ccl015_not_a_task", "NotATask"),
    ("ccl016_task_returns_canvas", "TaskReturnsCanvas"),
    ("ccl017_enqueue_in_transaction", "EnqueueInTransaction"),
    ("ccl018_json_unserializable", "JsonUnserializable"),
    ("ccl019_canvas_options_as_arguments", "CanvasOptionsAsArguments"),
    ("ccl020_arguments_to_immutable", "ArgumentsToImmutable"),
    ("ccl021_revoke_last_only", "RevokeLastOnly"),
    ("ccl022_consecutive_groups", "ConsecutiveGroups"),
    ("ccl023_swallowed_replace", "SwallowedReplace"),
    ("ccl024_serial_map", "SerialMap"),
    ("ccl025_chain_options_first_task", "ChainOptionsFirstTask"),
    ("ccl026_countdown_beyond_visibility", "CountdownBeyondVisibility"),
    ("ccl027_unbounded_chord_unlock", "UnboundedChordUnlock"),
)
# Each module is named after its rule's code: the codes, known without importing the rules.
RULE_CODES = tuple(module.split("_", 1)[0].upper() for module, _ in _CATALOGUE)
ALL_RULES: List[Type[Rule]]
RULES_BY_CODE: Dict[str, Type[Rule]]


def __getattr__(name: str):
    if name in ("ALL_RULES", "RULES_BY_CODE"):
        import importlib

        rules = [getattr(importlib.import_module(f"{__name__}.{module}"), cls)
                 for module, cls in _CATALOGUE]
        globals().update(ALL_RULES=rules, RULES_BY_CODE={rule.code: rule for rule in rules})
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
