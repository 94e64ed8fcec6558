"""Overview: every account's health at a glance, worst first."""

from app.overview import render
from app.settings import store_or_stop

render(store_or_stop())
