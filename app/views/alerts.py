"""Alerts: firing now, history, silences."""

from app.alerts_page import render
from app.settings import store_or_stop

render(store_or_stop())
