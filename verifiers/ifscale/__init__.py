"""IFScale (Jaroslawicz et al., 2025): many keyword-inclusion instructions in one prompt.

One constraint id, ``keywords:include_exact`` (kwarg ``keyword``), used N times per prompt with
N different keywords: the density family (``ifharness generate density``) builds those prompts.
IFScale's code decides "is the keyword there?" two ways (``shared/specs/suites.md`` §4), and
neither stems:

* rule (b), the default (profile ``reference``): ``\\b<keyword>\\b`` searched in the lower-cased
  answer. This is the rule behind IFScale's published accuracies (its ``analysis.py``), so the
  default reproduces the published numbers' semantics: "customer-driven" and "customer's" count
  for "customer" (the hyphen and the apostrophe are word boundaries), "customers" does not.
* rule (a), profile ``ifscale-token``: the rule IFScale's runner stores per constraint. Markdown
  emphasis pairs are removed, the answer is lower-cased and split on whitespace, the characters
  ``.,!?()[]{}":;*_`` are stripped from both ends of each token, and some token must equal the
  keyword (a ``*`` in the keyword matches any run of characters). "customers",
  "customer-driven" and "customer's" all fail.

Both rules fold case, so a keyword written with other capitals ("Customer") always passes.

The conflict map (``conflicts.json``) lists the id with no conflicts: two ``include_exact``
instructions with different keywords never contradict each other, which is the point of the
suite. A generic composer that treats every id as conflicting with itself puts at most one of
them in a prompt; the density family composes its own prompts (distinct keywords, none a
substring of another) and does not use the map.

Like every suite package, this ``__init__`` only registers the profile (it stays cheap to
import); the checker lives in ``keywords``.
"""

from ..profiles import Profile, register_profile

#: Profile flag: decide inclusion by IFScale's runner token rule (a) instead of rule (b).
TOKEN_RULE = "ifscale-token-rule"

IFSCALE_TOKEN = register_profile(
    Profile(
        "ifscale-token",
        "IFScale's runner rule (a) for keywords:include_exact: a whitespace token, emphasis "
        "and edge punctuation stripped, must equal the keyword (plural, hyphenated and "
        "possessive forms fail). The default is rule (b), \\b<kw>\\b on the lower-cased text, "
        "behind IFScale's published accuracies.",
        frozenset({TOKEN_RULE}),
    )
)
