"""The package version, in a module of its own so that no module imports ``vmgrade`` for it."""

__version__ = "0.1.0"
