"""Learning data exchange: deterministic CSV exports, their import, legacy files, the git hook.

The database is the source of truth on each machine; `exports/` in git carries it between
machines. Tables are discovered from the catalog (catalog.py), so tables added by new schema
modules are exported and imported without code changes.
"""
