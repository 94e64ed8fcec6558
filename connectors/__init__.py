"""Exchange connectors: ccxt adapters that turn accounts into snapshots, and the exchange simulator."""
