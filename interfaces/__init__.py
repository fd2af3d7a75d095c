"""The thin outer layer: the HTTP API and the command line."""
