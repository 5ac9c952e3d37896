"""ifharness verifiers: pure functions of a response's text, one per constraint id, per suite.

>>> from ifharness.verifiers import check
>>> check("punctuation:no_comma", "No commas here.")
True
>>> check("punctuation:no_comma", "No commas here.", suite="ifeval")
True

Nothing here does I/O or touches the network; resources load lazily on first use.
"""

from .profiles import PROFILES, REFERENCE, Profile, get_profile
from .registry import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    AmbiguousConstraintError,
    Constraint,
    KwargsError,
    Registry,
    UnknownConstraintError,
    UnknownSuiteError,
    check,
    constraint,
    get,
    load_all,
    require_suite,
    suites,
    unregister_suite,
)
from .text import Text, register_sentence_splitter

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROFILES",
    "REFERENCE",
    "REGISTRY",
    "AmbiguousConstraintError",
    "Constraint",
    "KwargsError",
    "Profile",
    "Registry",
    "Text",
    "UnknownConstraintError",
    "UnknownSuiteError",
    "check",
    "constraint",
    "get",
    "get_profile",
    "load_all",
    "register_sentence_splitter",
    "require_suite",
    "suites",
    "unregister_suite",
]
