"""Accounts & keys: polling state, errors and key permissions of every account."""

from app.keys_page import render
from app.settings import store_or_stop

render(store_or_stop())
