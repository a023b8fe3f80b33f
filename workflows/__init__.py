"""Temporal workflows: deterministic, reaching the outside world only through activities."""
