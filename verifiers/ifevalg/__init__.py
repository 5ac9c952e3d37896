"""IFEvalG / IFTrain: the 54 constraints open-instruct rewards RL training with (Tulu 3, OLMo).

Reference semantics: ``allenai/open-instruct`` at e6c3044 (``open_instruct/IFEvalG/``), as
``shared/specs/ifevalg.md`` describes it, quirks included (exclusive copy-span end, unescaped
regex keywords, the rule-based sentence splitter, ``word_once`` meaning *exactly* once, …).

* The 25 IFEval ids are re-registered here with IFEval's very checkers (``ifeval_ids``): the
  spec (§3) finds them identical, so the registry resolves a bare IFEval id to one checker.
* The 29 new ids live in one module per family (``copy``, ``new``, ``count``, ``letters``,
  ``first_word``, ``last_word``, ``paragraphs``, ``keywords``, ``detectable_format``,
  ``punctuation``). ``letters:letter_counting2`` *is* ``keywords:letter_frequency``.
* ``conflicts`` holds the table of ids that must not share a prompt (data for generators).
* Set-up redraws of falsy kwargs (spec §5) draw from the seeded ``rng`` of ``prepare=``, in
  the reference's order, so loading a task twice gives the same kwargs.

Unscorable rather than a verdict (``ReferenceCrash``, with the reason): a regex keyword that
does not compile (the reference raises ``re.error``), list-valued ``count:count_increment_word``
keywords (the reference's own broken defaults; it raises), an empty sentence piece where the
reference indexes its first word.

Profile ``ifevalg-2025`` reproduces the checkers as they were before 2026-04-08, the version
that rewarded models trained until then:

* ``ifevalg-repeat-phrase-2025``: ``copy:repeat_phrase`` decides on the *last* repetition's
  difference count only (the reference before ebca9f7).

Like every suite ``__init__``, this one only defines flags and registers the profile, so the
registry can import it early and cheaply.
"""

from ..profiles import Profile, register_profile

REPEAT_PHRASE_2025 = "ifevalg-repeat-phrase-2025"

IFEVALG_2025 = register_profile(
    Profile(
        "ifevalg-2025",
        "IFEvalG as open-instruct scored it before 2026-04-08 (ebca9f7): copy:repeat_phrase "
        "passes when the last repetition differs from the phrase in exactly one word.",
        frozenset({REPEAT_PHRASE_2025}),
    )
)
