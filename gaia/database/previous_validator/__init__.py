"""Adopting the previous validator's database (Gaia v2.9.96) and giving it back.

Revision ``0000`` checks the database and sets the previous weather tables aside under a
``previous_`` prefix; ``0001``–``0005`` build this project's tables exactly as on an empty
database; ``0006`` carries the history across. ``ADOPTION.md`` next to this module is the
status mapping and what is kept.
"""
