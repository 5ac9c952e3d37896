"""Named, versioned scoring profiles.

A suite keeps the reference scorer's semantics by default so numbers compare with published
ones. Anything that departs from it (a fix of a reference bug, an older reference version)
is a named flag inside a named profile, and every result records the profile it used.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    flags: frozenset[str] = field(default_factory=frozenset)

    def has(self, flag: str) -> bool:
        return flag in self.flags


#: IFEval flag: count a non-letter ``letter`` kwarg (``#``, ``!``) literally instead of the
#: reference's random substitute (google-research PR #2301 behaviour).
LETTER_SYMBOLS_LITERAL = "letter-symbols-literal"

REFERENCE = Profile(
    "reference",
    "Reference semantics of every suite, quirks included; randomness seeded to 0.",
)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        REFERENCE,
        Profile(
            "ifeval-fixes-v1",
            "Reference plus fix: keywords:letter_frequency counts a symbol letter literally.",
            frozenset({LETTER_SYMBOLS_LITERAL}),
        ),
    ]
}


def register_profile(profile: Profile) -> Profile:
    PROFILES[profile.name] = profile
    return profile


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown scoring profile {name!r}; known profiles: {known}") from None


def profile_names() -> list[str]:
    """Every registered profile's name, sorted. Suites register theirs when imported
    (``ifharness.verifiers.load_all`` imports every suite, entry points included)."""
    return sorted(PROFILES)


def profile_lines() -> list[str]:
    """One line per profile (name, description, how many flags), for ``ifharness profiles``."""
    out = []
    for name in profile_names():
        p = PROFILES[name]
        flags = f" ({len(p.flags)} flag{'s' if len(p.flags) != 1 else ''})" if p.flags else ""
        out.append(f"{name}: {p.description}{flags}")
    return out
