"""Account: positions, history, remedy, stress test and what-ifs."""

from app.account import render
from app.settings import store_or_stop

render(store_or_stop())
