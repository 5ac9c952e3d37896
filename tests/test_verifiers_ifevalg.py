"""IFEvalG checkers on the examples of shared/specs/ifevalg.md §4, one group per id.

Every expected verdict below is the spec's own example (or follows from its rule as stated
next to it). Rows of the golden data are covered by tests/test_ifevalg_parity.py.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from ifharness.scoring import judge
from ifharness.verifiers import (
    REFERENCE,
    AmbiguousConstraintError,
    KwargsError,
    Text,
    check,
    constraint,
    get,
    get_profile,
    load_all,
    unregister_suite,
)
from ifharness.verifiers.ifevalg._util import keyword_list
from ifharness.verifiers.ifevalg.copy import PHRASES
from ifharness.verifiers.ifevalg.ifeval_ids import IFEVAL_IDS
from ifharness.verifiers.registry import ReferenceCrash
from ifharness.verifiers.rule_sentences import split_into_sentences

SUITE = "ifevalg"


def ok(cid: str, text: str, **kwargs: Any) -> bool:
    """Strict verdict through the public entry point (blank text: not followed)."""
    return check(cid, text, suite=SUITE, **kwargs)


def bare(cid: str, text: str, profile=REFERENCE, **kwargs: Any) -> bool:
    """The checker itself on ``text`` (no blank-answer rule), kwargs bound first."""
    c = get(cid, SUITE)
    return c(Text(text, profile), **c.bind(kwargs))


# --- the rule-based sentence splitter ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello\n\nWorld.", ["Hello  World."]),  # newlines become spaces, others kept
        ("Mr. Smith met Dr. Who. St. Ives is far.", ["Mr. Smith met Dr. Who.", "St. Ives is far."]),
        ("Mrs. Ms. Jones left.", ["Mrs. Ms. Jones left."]),
        ("Visit example.com now. Or not.", ["Visit example.com now.", "Or not."]),
        ("I found some.meaning here.", ["I found some.meaning here."]),  # ".me", no boundary
        ("Pi is 3.14 today. Yes.", ["Pi is 3.14 today.", "Yes."]),
        ("Wait... what? No.", ["Wait...", "what?", "No."]),  # the run ends the sentence
        ("She has a Ph.D. in art.", ["She has a Ph.D. in art."]),
        ("Call J. Smith now.", ["Call J. Smith now."]),  # an initial after whitespace
        ("The U.S. army and e.g. a.b.c. work.", ["The U.S. army and e.g. a.b.c. work."]),
        ("He lives in the U.S. He left.", ["He lives in the U.S.", "He left."]),
        ("It was A.B.C. They said so.", ["It was A.B.C.", "They said so."]),
        ("Mr. Jones Inc. They left.", ["Mr. Jones Inc", "They left."]),  # the dot is dropped
        ("Acme Inc. makes tools.", ["Acme Inc. makes tools."]),  # no starter: protected
        ('He said "hi." Then left.', ['He said "hi".', "Then left."]),
        ("She wrote \u201cno.\u201d Fine.", ["She wrote \u201cno\u201d.", "Fine."]),
        ('Stop!" he cried. Why?" ok', ['Stop"!', "he cried.", 'Why"?', "ok"]),
        ("Wow!! Ok.", ["Wow!", "!", "Ok."]),  # punctuation-only pieces are kept
        ("no terminal mark at all", ["no terminal mark at all"]),
        ("", []),
        ("  \n ", []),
        ("a<stop>b <prd> c", ["a", "b . c"]),  # the markers are live in the text
    ],
)
def test_rule_sentences(text: str, sentences: list[str]):
    assert split_into_sentences(text) == sentences
    assert Text(text).rule_sentences == sentences


def test_rule_sentences_are_cached_per_text():
    t = Text("One. Two.")
    assert t.rule_sentences is t.rule_sentences


# --- the registry: 54 ids, IFEval's 25 shared ------------------------------------------


def test_suite_has_54_ids():
    ids = [c.id for c in load_all() if c.suite == SUITE]
    assert len(ids) == len(set(ids)) == 54
    assert set(IFEVAL_IDS) <= set(ids) and len(IFEVAL_IDS) == 25


@pytest.mark.parametrize("cid", IFEVAL_IDS)
def test_ifeval_ids_are_ifevals_checkers(cid: str):
    mine, theirs = get(cid, SUITE), get(cid, "ifeval")
    assert mine.suite == SUITE and theirs.suite == "ifeval"
    assert (mine.func, mine.prepare, mine.kwargs_model, mine.instruction, mine.pseudo) == (
        theirs.func,
        theirs.prepare,
        theirs.kwargs_model,
        theirs.instruction,
        theirs.pseudo,
    )


def test_bare_ifeval_id_resolves_to_the_first_suite():
    assert get("punctuation:no_comma").suite == "ifeval"
    assert check("punctuation:no_comma", "No commas here.") is True
    assert get("keywords:palindrome").suite == SUITE  # defined by one suite only


def test_bare_id_with_different_checkers_stays_ambiguous():
    load_all()

    @constraint("punctuation:no_comma", suite="toy_lookup", instruction="One comma is fine.")
    def at_most_one(t: Text) -> bool:
        return t.raw.count(",") <= 1

    try:
        with pytest.raises(AmbiguousConstraintError) as err:
            get("punctuation:no_comma")
        message = str(err.value)
        assert "defined by suites ifeval, toy_lookup; pass suite=" in message
        assert "ifevalg shares ifeval's checker" in message
        assert check("punctuation:no_comma", "a, b", suite="toy_lookup") is True
        assert check("punctuation:no_comma", "a, b", suite=SUITE) is False
    finally:
        unregister_suite("toy_lookup")
    assert get("punctuation:no_comma").suite == "ifeval"


def test_same_function_in_another_suite_is_not_ambiguous():
    load_all()
    func = get("punctuation:no_comma", "ifeval").func
    constraint("punctuation:no_comma", suite="toy_same", instruction="No commas.")(func)
    try:
        assert get("punctuation:no_comma").suite == "ifeval"
    finally:
        unregister_suite("toy_same")


def test_letter_counting2_is_letter_frequency():
    mine, theirs = get("letters:letter_counting2", SUITE), get("keywords:letter_frequency")
    assert mine.func is theirs.func and mine.prepare is theirs.prepare
    assert mine.family == "letters"
    kw = {"letter": "#", "let_frequency": 2, "let_relation": "at least"}
    assert mine.bind(kw, random.Random(0)) == theirs.bind(kw, random.Random(0))
    assert mine.bind(kw, random.Random(0))["letter"] in "abcdefghijklmnopqrstuvwxyz"
    assert ok(
        "letters:letter_counting2", "Dad did", letter="d", let_frequency=3, let_relation="at least"
    )


@pytest.mark.parametrize(
    ("cid", "kwargs", "text"),
    [
        (
            "copy:repeat_phrase",
            {"phrase": "Time flies when having fun", "small_n": 2},
            "Repeat the phrase Time flies when having fun exactly 2 times, transforming it "
            "slightly each time by replacing only one word in the center of the phrase.",
        ),
        (
            "new:copy_span_idx",
            {"prompt_to_repeat": "abcdef", "n_start": 1, "n_end": 4},
            "Copy the span of words that lies between (and including) index 1 and 4, the "
            "indices are character indices!",
        ),
        (
            "paragraphs:paragraphs2",
            {},
            "There should be 2 paragraphs. Paragraphs and only paragraphs are separated with "
            "each other by two line breaks. ",
        ),
        (
            "keywords:word_count_different_numbers",
            {"keyword": "cat", "frequency": 2, "relation": "less than"},
            "In your response, the word cat should appear 2 times.",
        ),
        (
            "count:count_increment_word",
            {"keyword1": ["resident"], "keyword2": "truck"},
            "Include keyword ['resident'] once in your response, keyword truck twice in your "
            "response.",
        ),
        (
            "keywords:keyword_specific_position",
            {"keyword": "cat", "n": 2, "m": 5},
            "Include keyword cat in the 2-th sentence, as the 5-th word of that sentence.",
        ),
        (
            "letters:letter_counting",
            {"N": 3, "relation": "at least"},
            "Answer with at least 3 letters.",
        ),
        (
            "count:counting_composition",
            {"n_sent": 2, "n_words": 3},
            "Write 3 paragraphs, delimited by the markdown divider: * * *, with exactly 2 "
            "sentences each, with exactly 3 words in each sentence.",
        ),
    ],
)
def test_instruction_texts(cid: str, kwargs: dict[str, Any], text: str):
    c = get(cid, SUITE)
    bound = c.bind(kwargs)
    assert c.render(bound) == text
    assert c.render(bound, pseudo=True)  # the code form renders too


def test_every_new_id_renders_both_forms():
    for c in load_all():
        if c.suite == SUITE and c.id not in IFEVAL_IDS:
            assert c.pseudo, c.id


# --- 4.1 copy:repeat_phrase ----------------------------------------------------------------

PHRASE = {"phrase": "Time flies when having fun", "small_n": 2}
OLD = get_profile("ifevalg-2025")


@pytest.mark.parametrize(
    ("text", "current", "old"),
    [
        ("Time runs when having fun and Time flies when we fun", True, True),
        ("time runs when having fun and time flies when we fun", False, False),  # case
        ("Time runs when having funny and Time flies when we fun", True, True),  # "fun" prefix
        ("Time flies when having fun. Time runs when having fun", False, True),  # one copy
        ("Time runs when having fun. Time flies when having fun", False, False),
        ("Time runs when we fun. Time flies when we fun", False, False),  # two words differ
        ("Time runs when having fun", False, False),  # once, not twice
    ],
)
def test_repeat_phrase(text: str, current: bool, old: bool):
    assert bare("copy:repeat_phrase", text, **PHRASE) is current
    assert bare("copy:repeat_phrase", text, OLD, **PHRASE) is old


def test_repeat_phrase_text_before_the_phrase_on_its_line_fails():
    kw = {"phrase": "Time flies when having fun", "small_n": 1}
    assert bare("copy:repeat_phrase", "Time runs when having fun", **kw)
    assert not bare("copy:repeat_phrase", "Time is short. Time runs when having fun", **kw)


def test_repeat_phrase_draws_in_order():
    bound = get("copy:repeat_phrase", SUITE).bind({}, random.Random(0))
    r = random.Random(0)
    assert bound == {"phrase": r.choice(PHRASES), "small_n": r.randint(2, 3)}


# --- 4.2-4.4, 4.18 copies ----------------------------------------------------------------


@pytest.mark.parametrize("cid", ["copy:copy", "copy:copying_simple"])
def test_copy_verbatim(cid: str):
    kw = {"prompt_to_repeat": " Say Hi to Bob. "}
    assert ok(cid, "say hi to bob.\n", **kw)
    assert not ok(cid, "Say Hi to Bob. Sure!", **kw)  # an extra word
    assert not ok(cid, '"Say Hi to Bob."', **kw)
    assert not ok(cid, "Say  Hi to Bob.", **kw)  # inner whitespace changed
    assert not ok(cid, "Straße", prompt_to_repeat="STRASSE")  # lower(), not casefold()
    with pytest.raises(KwargsError, match="prompt_to_repeat"):
        get(cid, SUITE).bind({})


def test_copy_span_idx():
    kw = {"prompt_to_repeat": "Hello world", "n_start": 1, "n_end": 4}
    assert ok("new:copy_span_idx", " ELL ", **kw)  # end excluded
    assert not ok("new:copy_span_idx", "ello", **kw)
    assert ok("new:copy_span_idx", "worl", prompt_to_repeat="Hello world", n_start=-5, n_end=-1)


def test_copy_span_idx_redraws_a_zero_start():
    prompt = "Hello world"
    bound = get("new:copy_span_idx", SUITE).bind(
        {"prompt_to_repeat": prompt, "n_start": 0, "n_end": 4}, random.Random(0)
    )
    assert bound["n_start"] == random.Random(0).randint(0, len(prompt) - 2)
    assert bound["n_end"] == 4
    r = random.Random(0)
    start = r.randint(0, len(prompt) - 2)
    both = get("new:copy_span_idx", SUITE).bind({"prompt_to_repeat": prompt}, random.Random(0))
    assert both == {"prompt_to_repeat": prompt, "n_start": start, "n_end": r.randint(start + 1, 10)}


def test_copying_multiple():
    kw = {"prompt_to_repeat": "Hi there", "N": 2}
    assert ok("copy:copying_multiple", "Hi there\n******\nhi there", **kw)
    assert not ok("copy:copying_multiple", "******Hi there******Hi there", **kw)
    assert not ok("copy:copying_multiple", "Hi there*******Hi there", **kw)  # seven
    assert not ok("copy:copying_multiple", "Hi there", **kw)


# --- 4.5-4.7, 4.17 formats ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("One.-Two.", True),
        ("Hi!-Yo?-Ok.", True),
        ("Just one sentence.", True),
        ("One. Two.", False),
        ("One. - Two.", False),
        ("It is well-known.", False),
        ("One.-Two.\n", False),  # strict: the last piece keeps its newline
        ("One.-", True),  # the extra empty piece is never compared
        ("-One.", False),
        ('He said "hi."-Then left.', False),  # the splitter swaps the quote
    ],
)
def test_sentence_hyphens(text: str, want: bool):
    assert ok("detectable_format:sentence_hyphens", text) is want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Big apple", True),
        ("apple Big", False),
        ("1 2", False),
        ("( )", False),
        ("word", True),
        ("İstanbul zoo", False),
        ("a c e", True),
    ],
)
def test_no_adjacent_consecutive(text: str, want: bool):
    assert ok("keywords:no_adjacent_consecutive", text) is want


@pytest.mark.parametrize(
    ("text", "want"),
    [("[a] [b]", True), ("[]", True), ("[a][b]", True), ("[two words]", False), ("[a],", False)],
)
def test_square_brackets(text: str, want: bool):
    assert ok("detectable_format:square_brackets", text) is want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("<<I am>> <<at home>>", True),
        ("<<a>> <<b>>", True),
        ("<<a b c>>", False),
        ("<<a b>>c <<d e>>", False),
        ("one", True),
        ("<<a b>> odd", True),
    ],
)
def test_bigram_wrapping(text: str, want: bool):
    assert ok("detectable_format:bigram_wrapping", text) is want


# --- 4.8-4.10, 4.26-4.29 keywords ----------------------------------------------------------


def test_word_once_counts_regex_matches_exactly_once():
    assert not ok("keywords:word_once", "Start the party", keyword="art")  # 2 matches
    assert ok("keywords:word_once", "A piece of ART.", keyword=" art ")  # stripped
    assert ok("keywords:word_once", "an ant", keyword="a.t")
    assert not ok("keywords:word_once", "nothing", keyword="art")


def test_bad_regex_keyword_is_unscorable_with_a_reason():
    bound = [("keywords:word_once", get("keywords:word_once", SUITE).bind({"keyword": "C++("}))]
    row = judge(bound, "I write C++ code.", REFERENCE, SUITE)
    assert row["strict"] == [None] and row["loose"] == [None]
    assert "not a valid regular expression" in row["unscorable"]["0"]


def test_word_count_different_numbers():
    kw = {"keyword": "cat", "frequency": 2}
    assert ok("keywords:word_count_different_numbers", "no felines", relation="less than", **kw)
    assert not ok("keywords:word_count_different_numbers", "cat cat", relation="less than", **kw)
    assert ok("keywords:word_count_different_numbers", "Cat CAT", relation="at least", **kw)
    with pytest.raises(KwargsError):
        get("keywords:word_count_different_numbers", SUITE).bind({**kw, "relation": "about"})
    # frequency 0 is kept; a negative one is redrawn from 1..3
    c = get("keywords:word_count_different_numbers", SUITE)
    assert c.bind({**kw, "frequency": 0, "relation": "at least"})["frequency"] == 0
    drawn = c.bind({**kw, "frequency": -1, "relation": "at least"}, random.Random(0))
    assert drawn["frequency"] == random.Random(0).randint(1, 3)


def test_exclude_word_harder():
    kw = {"keyword": "cat"}
    assert ok("keywords:exclude_word_harder", "Cat sat. cat", **kw)
    assert ok("keywords:exclude_word_harder", "the cat, sat", **kw)
    assert not ok("keywords:exclude_word_harder", "the cat sat", **kw)
    c = get("keywords:exclude_word_harder", SUITE)
    prompt = 'Tell me about "Tripoli". Now.'
    bound = c.bind({"instruction": prompt}, random.Random(0))
    assert bound["keyword"] == random.Random(0).choice(prompt.split())
    with pytest.raises(KwargsError, match="keyword"):
        c.bind({})


def test_palindrome():
    assert not ok("keywords:palindrome", "Wow Level")
    assert ok("keywords:palindrome", "a racecar")
    assert not ok("keywords:palindrome", "level.")
    assert ok("keywords:palindrome", "so I said")
    assert bare("keywords:palindrome", "") is False


def test_keyword_specific_position():
    kw = {"keyword": "cat", "n": 1, "m": 3}
    assert ok("keywords:keyword_specific_position", "Well, cat sat.", **kw)  # "," is word 2
    assert not ok("keywords:keyword_specific_position", "Well, Cat sat.", **kw)
    assert not ok("keywords:keyword_specific_position", "Well cat sat.", **kw)
    assert ok(
        "keywords:keyword_specific_position", "One. Well, cat sat.", keyword=["cat"], n=2, m=3
    )
    assert not ok("keywords:keyword_specific_position", "Well, cat sat.", keyword="cat", n=2, m=3)
    assert not ok("keywords:keyword_specific_position", "Well, cat.", keyword="cat", n=1, m=9)


def test_keyword_specific_position_draws_in_order():
    try:
        words = keyword_list()
    except KwargsError:
        pytest.skip("lm_eval (the keyword list's source) is not installed")
    assert len(words) == 1525
    bound = get("keywords:keyword_specific_position", SUITE).bind({}, random.Random(0))
    r = random.Random(0)
    assert bound == {
        "keyword": r.sample(words, k=1)[0],
        "n": r.randint(1, 20),
        "m": r.randint(1, 30),
    }


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("hi there hi", True),
        ("Hi there HI", True),
        ("Hi there hi.", False),
        ('"hi there hi"', False),
        (". hi .", True),
        ("hi", False),
    ],
)
def test_start_end(text: str, want: bool):
    assert ok("keywords:start_end", text) is want


def test_count_increment_word():
    kw = {"keyword1": "cat", "keyword2": "dog"}
    assert ok("count:count_increment_word", "cat dog DOG", **kw)
    assert not ok("count:count_increment_word", "cat dog", **kw)
    assert not ok("count:count_increment_word", "party party", keyword1="art", keyword2="party")
    assert ok("count:count_increment_word", "ant dog dog", keyword1="a.t", keyword2="dog")


def test_count_increment_word_list_kwargs_are_unscorable():
    c = get("count:count_increment_word", SUITE)
    bound = c.bind({"keyword1": ["resident"], "keyword2": ["truck"]})  # loads
    row = judge([(c.id, bound)], "resident truck truck", REFERENCE, SUITE)
    assert row["strict"] == [None] and row["loose"] == [None]
    reason = row["unscorable"]["0"]
    assert "keyword1=['resident']" in reason and "plain string" in reason
    with pytest.raises(ReferenceCrash):
        c(Text("resident truck truck"), **bound)


# --- 4.11-4.16 paragraphs, first and last words -------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [("A *** B", True), ("***A***B***", True), ("A\n******\nB", False), ("A", False)],
)
def test_paragraphs(text: str, want: bool):
    assert ok("paragraphs:paragraphs", text) is want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("A\n\n\nB", True),
        ("A\n\n\n\nB", False),
        ("\n\nA\n\nB\n\n", True),
        ("A\n \nB", False),
        ("A\n\nB\n\nC", False),
    ],
)
def test_paragraphs2(text: str, want: bool):
    assert ok("paragraphs:paragraphs2", text) is want


def test_first_word_sent():
    assert ok("first_word:first_word_sent", "So it goes. SO be it!", first_word="so")
    assert not ok("first_word:first_word_sent", "So, it goes.", first_word="so")
    assert not ok("first_word:first_word_sent", "So it goes!!", first_word="so")  # "!" alone
    assert ok("first_word:first_word_sent", "So it\nsome more", first_word=["so", "x"])
    assert bare("first_word:first_word_sent", "", first_word="so") is True


def test_first_word_answer():
    assert ok("first_word:first_word_answer", "  so what", first_word=" So ")
    assert not ok("first_word:first_word_answer", "SO. yes", first_word="so")
    row = judge(
        [("first_word:first_word_answer", {"first_word": "word"})],
        "**Word** here",
        REFERENCE,
        SUITE,
    )
    assert row == {"strict": [False], "loose": [True]}  # loose removes the asterisks
    assert bare("first_word:first_word_answer", "", first_word="so") is False


def test_last_word_sent():
    kw = {"last_word": "end"}
    assert ok("last_word:last_word_sent", "The end. Not the end)! So **end**.", **kw)
    assert not ok("last_word:last_word_sent", "It is the end's", **kw)
    assert not ok("last_word:last_word_sent", "The end!!", **kw)  # second "!" has no word
    assert bare("last_word:last_word_sent", "", **kw) is True


def test_last_word_answer():
    assert ok("last_word:last_word_answer", "The END!!!", last_word="end")
    assert not ok("last_word:last_word_answer", "The end .", last_word="end")
    assert not ok("last_word:last_word_answer", "the end_", last_word="end")
    with pytest.raises(ReferenceCrash):
        bare("last_word:last_word_answer", "  ", last_word="end")
    assert ok("last_word:last_word_answer", "  ", last_word="end") is False  # drivers' rule


# --- 4.19-4.25 punctuation and counts -------------------------------------------------------


def test_punctuation():
    assert ok("punctuation:punctuation_dot", "Wait\u2026 \u3002 no dots")
    assert not ok("punctuation:punctuation_dot", "A dot.")
    assert ok("punctuation:punctuation_exclamation", "Wow\uff01")
    assert not ok("punctuation:punctuation_exclamation", "Wow!")


def test_lowercase_counting():
    assert ok("count:lowercase_counting", "I don't", N=2)  # don, t
    assert not ok("count:lowercase_counting", "I don't go", N=2)
    assert ok("count:lowercase_counting", "iPhone hello_world naïve abc1 OK", N=1)
    c = get("count:lowercase_counting", SUITE)
    assert c.bind({"N": 0}, random.Random(0)) == {"N": random.Random(0).randint(2, 3)}


def test_letter_counting():
    assert ok("letters:letter_counting", "abc", N=3, relation="at least")
    assert not ok("letters:letter_counting", "ab 12", N=3, relation="at least")
    assert ok("letters:letter_counting", "ab \u00e9\u00e9\u00e9", N=3, relation="less than")
    assert not ok("letters:letter_counting", "ab", N=3, relation="about")  # not validated
    assert bare("letters:letter_counting", "", N=3, relation="at least") is False
    assert bare("letters:letter_counting", "", N=3, relation="less than") is True
    r = random.Random(0)
    n = r.randint(2, 3)
    assert get("letters:letter_counting", SUITE).bind({}, random.Random(0)) == {
        "N": n,
        "relation": r.choice(("less than", "at least")),
    }


COMPOSED = "Cats sleep. Dogs run.***Birds fly. Fish swim.***Cows moo. Ants dig."


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (COMPOSED, True),
        (COMPOSED.replace("***", " * * * "), False),  # the divider shown is not recognised
        ("***" + COMPOSED, False),  # a blank edge piece has no sentences
        (COMPOSED + "***Elk eat. Owls hoot.", False),  # four paragraphs
        (COMPOSED.replace("Cats sleep.", "Cats."), False),  # "Cats." is two words
        (COMPOSED.replace("***Birds", "*** ***Birds"), False),  # blank middle piece
    ],
)
def test_counting_composition(text: str, want: bool):
    assert ok("count:counting_composition", text, n_sent=2, n_words=3) is want


@pytest.mark.parametrize(
    ("text", "want"),
    [("The the", True), ("One. Two.", False), ("can't can not", True), ("a b a", False)],
)
def test_count_unique(text: str, want: bool):
    assert ok("count:count_unique", text) is want


# --- bare checkers on an empty text (spec §4, last list) -------------------------------------

EMPTY_TRUE = {
    "detectable_format:sentence_hyphens": {},
    "keywords:no_adjacent_consecutive": {},
    "detectable_format:square_brackets": {},
    "keywords:word_count_different_numbers": {
        "keyword": "x",
        "frequency": 1,
        "relation": "less than",
    },
    "keywords:exclude_word_harder": {"keyword": "x"},
    "first_word:first_word_sent": {"first_word": "x"},
    "last_word:last_word_sent": {"last_word": "x"},
    "detectable_format:bigram_wrapping": {},
    "punctuation:punctuation_dot": {},
    "punctuation:punctuation_exclamation": {},
    "count:lowercase_counting": {"N": 2},
    "letters:letter_counting": {"N": 2, "relation": "less than"},
    "letters:letter_counting2": {"letter": "a", "let_frequency": 2, "let_relation": "less than"},
    "count:count_unique": {},
}
EMPTY_FALSE = {
    "copy:repeat_phrase": {"phrase": "Time flies when having fun", "small_n": 2},
    "copy:copy": {"prompt_to_repeat": "x"},
    "copy:copying_simple": {"prompt_to_repeat": "x"},
    "copy:copying_multiple": {"prompt_to_repeat": "x", "N": 2},
    "new:copy_span_idx": {"prompt_to_repeat": "xyz", "n_start": 1, "n_end": 2},
    "keywords:word_once": {"keyword": "x"},
    "paragraphs:paragraphs": {},
    "paragraphs:paragraphs2": {},
    "first_word:first_word_answer": {"first_word": "x"},
    "count:counting_composition": {"n_sent": 2, "n_words": 2},
    "count:count_increment_word": {"keyword1": "x", "keyword2": "y"},
    "keywords:palindrome": {},
    "keywords:keyword_specific_position": {"keyword": "x", "n": 1, "m": 1},
    "keywords:start_end": {},
    "letters:letter_counting": {"N": 2, "relation": "at least"},
}


@pytest.mark.parametrize(("cid", "kwargs"), [*EMPTY_TRUE.items(), *EMPTY_FALSE.items()])
def test_bare_checker_on_empty_text(cid: str, kwargs: dict[str, Any]):
    assert bare(cid, "", **kwargs) is (cid in EMPTY_TRUE and EMPTY_TRUE[cid] == kwargs)
    assert ok(cid, "", **kwargs) is False  # the drivers' blank rule wins
