"""The complaint domain: pure Python, no I/O. Intake, commands, events, fold, decide, hash chain, policies."""
