"""Tsunagari's use cases: the commands and queries front desks, coordinators and evaluators need."""
