"""The plan's outcome indicators, computed only from the log."""
