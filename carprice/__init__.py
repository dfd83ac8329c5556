"""carprice: a used-car price model run as a living service."""

__version__ = "0.1.0"
