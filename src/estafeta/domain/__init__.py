"""Pure-Python rules of Estafeta.

Nothing in this package imports Django or touches a database (an import-linter contract in
pyproject.toml and ``tests/test_domain_is_pure.py`` enforce it). Functions take ``now`` and the
facts they need as arguments and return decisions, so they can be tested from tables.
"""
