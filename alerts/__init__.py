"""Alerts: pure rules and state (alerts.rules, alerts.evaluate) and delivery (email, webhooks)."""
