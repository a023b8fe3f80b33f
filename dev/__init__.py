"""The embedded stack for development, demos and tests: real servers from wheels, nothing downloaded."""
