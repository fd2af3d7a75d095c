"""Settings, persistence, tokens and logging: the parts that touch the outside world."""
