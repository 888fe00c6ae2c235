"""mobench: a benchmark and evaluation suite for controllable multi-objective generation."""

__version__ = "0.1.0"
