"""The `complaints` console script: a thin shell over starter, audit and dev."""
