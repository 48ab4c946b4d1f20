"""A pure-Python implementation of the Container Network Interface."""
__version__ = "0.1.0"
