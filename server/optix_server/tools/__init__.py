"""Developer tools run by `make` targets (not imported by the services)."""
