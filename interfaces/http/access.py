"""Who may call what: the one table of role sets the routes use (documented in README)."""

from __future__ import annotations

from domain.provenance import Role

EVERY_ROLE = frozenset(Role)
SCHEDULING = frozenset({Role.COORDINATOR, Role.ADMIN})
"""Organisations, programmes and the schedule of events."""
FRONT_DESK = frozenset({Role.DESK, Role.COORDINATOR, Role.ADMIN})
"""Registering participants, check-ins, corrections, walk-ins; reading personal data."""
READ_RECORDS = EVERY_ROLE
"""Organisations, programmes, events and attendance lists: no personal data."""
READ_INDICATORS = frozenset({Role.COORDINATOR, Role.EVALUATOR, Role.AUDITOR, Role.ADMIN})
"""Outcome indicators: aggregate numbers, no personal data."""
AUDIT = frozenset({Role.AUDITOR, Role.ADMIN})
"""The audit trail: every stored record, personal fields masked."""
ADMIN_ONLY = frozenset({Role.ADMIN})
"""Erasure and disclosure (開示) of one participant's personal data."""
