"""Scenario Budget Bot: Scenario Compute Unit spend, budgets and alerts in Slack."""

__version__ = "0.1.0"
