"""IFBench's 58 out-of-distribution constraints (Pyatkin et al., 2025), reference semantics.

One module per id family (``count``, ``ratio``, ``words``, ``sentence``, ``format``,
``custom``, ``repeat``); shared text helpers live in ``_util``. Behaviour follows
``shared/specs/ifbench.md`` and is the *current* reference scorer (allenai/IFBench at
db69a6f) by default, quirks included: the checks that ignore half of what the prompt asks
(``ratio:sentence_words`` never checks word reuse, ``format:thesis`` needs one italic span,
…) are kept as they are, so scores compare with published ones.

The reference changed behaviour between versions. The recorded sample scores in the IFBench
repository come from commit c94da02 (2025-10-17); profile ``ifbench-2025`` reproduces that
version, one flag per change, so any mix can be named in a profile of its own:

* ``ifbench-regex-sentences``: every sentence split uses IFEval's rule-based splitter instead
  of NLTK Punkt (flips ``ratio:sentence_type`` at key 163 of the sample answers).
* ``ifbench-repeat-span-words``: ``repeat:repeat_span`` compares whitespace words
  ``n_start`` up to ``n_end`` (end excluded) instead of the characters ``n_start..n_end``;
  a zero index is treated as missing and drawn at random (seeded), as that version did.
* ``ifbench-person-names-substring``: ``count:person_names`` finds a name anywhere
  (``Emma`` inside ``Emmanuel``) instead of as a whole word.
* ``ifbench-pronouns-2025``: ``count:pronouns`` counts only the 31 personal, possessive and
  reflexive pronouns, on whitespace words with ASCII punctuation deleted.
* ``ifbench-sentence-keyword-substring``: ``sentence:keyword`` finds the keyword as a
  case-insensitive substring instead of a whole word.
* ``ifbench-word-positions-2025``: ``words:keywords_specific_position`` and
  ``words:words_position`` compare Treebank tokens case-sensitively, punctuation tokens
  included, with no allowance for a final punctuation token.
* ``ifbench-title-case-2025``: ``format:title_case`` lets one-letter lower-case tokens pass.
* ``ifbench-curly-quotes``: ``format:quote_unquote`` turns curly double quotes into straight
  ones first (HEAD's version of that line is a no-op).
* ``ifbench-2025-crashes``: where c94da02 raised on a non-blank answer and HEAD returns a
  verdict (no words for ``ratio:stop_words``/``words:alphabet``, a response under three
  characters for ``ratio:overlap``, a punctuation-only sentence for ``words:last_first``,
  ``format:emoji`` and ``custom:sentence_alphabet``, nothing left for
  ``format:quote_unquote``), raise ``ReferenceCrash`` (unscorable) as that version did.

Checkers return a verdict on any answer, with three exceptions that the scorer records as
*unscorable* (with the message) and keeps out of every denominator:

* ``words:start_verb`` raises ``ResourceUnavailable`` when NLTK's perceptron tagger is not
  installed (no package ships it; we never download it);
* the CSV checks (``custom:csv_city``, ``custom:csv_special_character``,
  ``custom:csv_quotes``) raise ``ReferenceCrash`` where ``csv`` raises in the reference: a field
  over csv's default 131,072-character limit, a lone carriage return inside a field;
* ``custom:csv_quotes`` raises ``ReferenceCrash`` on an empty field (the reference's
  ``IndexError``, which aborts its whole run).

This module only defines flags and registers the profile: importing it stays cheap, so the
registry can import it early and the profile name resolves before any checker is loaded.
"""

from ..profiles import Profile, register_profile

REGEX_SENTENCES = "ifbench-regex-sentences"
REPEAT_SPAN_WORDS = "ifbench-repeat-span-words"
PERSON_NAMES_SUBSTRING = "ifbench-person-names-substring"
PRONOUNS_2025 = "ifbench-pronouns-2025"
SENTENCE_KEYWORD_SUBSTRING = "ifbench-sentence-keyword-substring"
WORD_POSITIONS_2025 = "ifbench-word-positions-2025"
TITLE_CASE_2025 = "ifbench-title-case-2025"
CURLY_QUOTES = "ifbench-curly-quotes"
CRASHES_2025 = "ifbench-2025-crashes"

IFBENCH_2025 = register_profile(
    Profile(
        "ifbench-2025",
        "IFBench as scored by allenai/IFBench c94da02 (2025-10-17), the version behind the "
        "recorded sample verdicts: regex sentence splitter, word-index repeat_span, and the "
        "other checker changes listed in verifiers/ifbench/__init__.py.",
        frozenset(
            {
                REGEX_SENTENCES,
                REPEAT_SPAN_WORDS,
                PERSON_NAMES_SUBSTRING,
                PRONOUNS_2025,
                SENTENCE_KEYWORD_SUBSTRING,
                WORD_POSITIONS_2025,
                TITLE_CASE_2025,
                CURLY_QUOTES,
                CRASHES_2025,
            }
        ),
    )
)
