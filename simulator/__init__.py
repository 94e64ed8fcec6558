"""A local exchange simulator speaking the REST endpoints ccxt calls for Binance USD-M,
Bybit v5, OKX v5 and Hyperliquid's info endpoint, so that ccxt's real signing, parsing and
error mapping run against scenario accounts whose numbers come from the margin engine
(Hyperliquid's: from the venue's published formulas). See docs/simulator.md."""

from simulator.scenario import ScenarioError, load_scenario
from simulator.server import ExchangeSimulator

__all__ = ["ExchangeSimulator", "ScenarioError", "load_scenario"]
