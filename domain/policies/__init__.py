"""Policies that change by place and by business: regulators' deadlines, the remedy catalogue."""
