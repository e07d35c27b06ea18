"""Tests of the market data slice."""
