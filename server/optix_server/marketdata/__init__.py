"""Market data slice: providers, quotes, options chains with Greeks and quote streaming."""
