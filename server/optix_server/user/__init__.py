"""The user service slice."""
