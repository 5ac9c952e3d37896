"""ifharness verifiers: pure functions of a response's text, one per constraint id.

>>> from ifharness.verifiers import check
>>> check("punctuation:no_comma", "No commas here.")
True

Nothing here does I/O or touches the network; resources load lazily on first use.
"""

from .profiles import PROFILES, REFERENCE, Profile, get_profile
from .registry import (
    REGISTRY,
    Constraint,
    KwargsError,
    UnknownConstraintError,
    check,
    constraint,
    get,
    load_all,
)
from .text import Text

__all__ = [
    "PROFILES", "REFERENCE", "REGISTRY", "Constraint", "KwargsError", "Profile", "Text",
    "UnknownConstraintError", "check", "constraint", "get", "get_profile", "load_all",
]
