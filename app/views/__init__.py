"""Page scripts for st.navigation (app/main.py). Not `pages/`: see main.py."""
