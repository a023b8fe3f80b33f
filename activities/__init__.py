"""Activities: thin I/O around the domain (the event log, calendars, the remedy catalogue and provider)."""
