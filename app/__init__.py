"""The Streamlit dashboard: reads the store, recomputes what-ifs with the margin engine.

It never calls an exchange. Entry point: `streamlit run app/main.py` (see docs/dashboard.md).
"""
