"""Tests of the documentation: the README's code blocks run against a real server."""
