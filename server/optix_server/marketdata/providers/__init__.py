"""Market data providers: simulated (default), replay of recorded ticks, and Schwab over HTTP."""
