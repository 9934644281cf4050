"""Per-file facts: what one pass over a module's syntax tree extracts for the rules.

Facts are plain, picklable data (no syntax tree nodes), so that they can be cached on disk and
resolved across modules without keeping syntax trees alive.
"""
