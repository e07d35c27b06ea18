"""The alert service slice."""
