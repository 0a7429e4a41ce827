"""Backends: where the PostgreSQL server runs (native, docker, external)."""
