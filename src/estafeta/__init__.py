"""Estafeta: a ticket system for sales departments where no request is ever dropped."""

__version__ = "0.1.0"
