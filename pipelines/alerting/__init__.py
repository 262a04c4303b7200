"""Alerts: what they say (Slack-compatible JSON) and where they go (webhook, log, ``alerts`` table)."""
