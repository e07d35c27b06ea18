"""The brokerage service slice."""
