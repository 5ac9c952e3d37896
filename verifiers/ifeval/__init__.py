"""IFEval's 25 constraints (Zhou et al., 2023) with the reference scorer's semantics.

Each module holds one family (the id's prefix). Behaviour follows
``shared/specs/ifeval.md``; the quirks it lists are kept on purpose, so that scores compare
with published numbers. Fixes live behind named profile flags (see ``profiles.py``).
"""
