"""pgAdmin 4 beside the learning database: a container in docker mode (container.py), a
process from PyPI in an environment of its own otherwise (native.py). Both get the same
login (registration.py: generated, kept in .env) and the learning server registered in
advance, its password read from a pgpass file that never enters servers.json or an image."""
