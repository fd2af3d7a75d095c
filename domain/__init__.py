"""Tsunagari's domain: aggregates, value objects and reference-data rules. No I/O."""
