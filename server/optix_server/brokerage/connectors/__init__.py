"""Brokerage provider connectors: one interface (base.BrokerConnector), Schwab and paper."""
