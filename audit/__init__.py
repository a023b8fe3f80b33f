"""What auditors run: verify (log vs workflow vs Temporal history), timeline, export, seal, report."""
