"""A local exchange simulator speaking the REST endpoints ccxt calls for Binance USD-M,
Bybit v5 and OKX v5, so that ccxt's real signing, parsing and error mapping run against
scenario accounts whose numbers come from the margin engine. See docs/simulator.md."""

from simulator.scenario import ScenarioError, load_scenario
from simulator.server import ExchangeSimulator

__all__ = ["ExchangeSimulator", "ScenarioError", "load_scenario"]
