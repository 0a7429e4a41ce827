"""Installs, repairs and syncs the PostgreSQL learning database used by AI coding agents."""

__version__ = "0.1.0"
