"""Read models computed from the event log."""
