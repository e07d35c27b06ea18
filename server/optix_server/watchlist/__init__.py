"""The watchlist service slice."""
