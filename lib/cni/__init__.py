"""A pure-Python implementation of the Container Network Interface."""
__version__ = "0.1.0"  # the one place: pyproject.toml reads it (a literal, parsed statically)
