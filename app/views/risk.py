"""Risk: every account under a correlated BTC crash, and collateral rebalancing per owner."""

from app.risk_page import render
from app.settings import store_or_stop

render(store_or_stop())
