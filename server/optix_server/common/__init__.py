"""Helpers shared by several service slices (symbol parsing)."""
