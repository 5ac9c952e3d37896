"""``verifiers.punkt_fast`` gives NLTK's Punkt English sentences, byte for byte, and
``nlp.word_tokenize`` gives NLTK's ``word_tokenize`` tokens.

The references are NLTK's own classes: ``nlp.punkt_english()`` (``PunktSentenceTokenizer``
with the same English parameters) and ``NLTKWordTokenizer``. Speed is measured by
``bench/bench_punkt.py``, never here.
"""

from __future__ import annotations

import functools
import string
import sys

import pytest
import regex

from ifharness.verifiers import Text, nlp, punkt_fast
from tests.support.data import read_jsonl, shared

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis (the dev extra) is not installed")
HealthCheck, given, settings = hypothesis.HealthCheck, hypothesis.given, hypothesis.settings
st = pytest.importorskip("hypothesis.strategies")


def _reference(text: str) -> list[str]:
    return nlp.punkt_english().tokenize(text)


def _assert_same(texts: list[str]) -> None:
    for text in texts:
        expected = _reference(text)
        assert punkt_fast.sentences(text) == expected, text[:200]


# --- the real answers ------------------------------------------------------------------


def test_identical_on_every_gpt4_answer_and_its_loose_variants():
    texts = [r["response"] for r in read_jsonl(shared("ifeval/gpt4_responses.jsonl"))]
    assert len(texts) == 540
    variants = [v.raw for t in texts for v in Text(t).loose_variants]
    assert len(variants) > 1500  # distinct variant texts (Text.loose_variants dedupes)
    _assert_same(texts)
    _assert_same(variants)


def test_identical_on_every_ifbench_sample_output():
    texts = [r["response"] for r in read_jsonl(shared("ifbench/sample_output.jsonl"))]
    assert len(texts) > 250
    _assert_same(texts)


def test_sent_tokenize_uses_it():
    text = "Dr. Smith went to Washington. He arrived at 5 p.m. Everyone cheered!"
    assert nlp.sent_tokenize(text) == punkt_fast.sentences(text) == _reference(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\n",
        "no end mark",
        "  leading space. Then more.",
        "\nFirst. Second.",
        "Hi!!! There.",
        "Wait?! What.",
        "(Sent1.) Sent2.",
        '"Quoted." Next one.',
        "a. b. c.",
        "end.)",
        "one.  ",
        "x.\u00a0Y.",
        "x.\u2003Y z.",
        "x.\x1cY z.",
        "A. B. Smith. The end.",
        "It's 5 p.m. Now what?",
        "Mr. and Mrs. Smith.",
        "... Hello. . . . World.",
        "U.S.A. is big. e.g. this. i.e., that.",
        "1. First\n2. Second\n3. Third",
        "\u201cHello.\u201d \u00abBonjour.\u00bb Done.",
        'Ends with a quote." ',
        "e.g.\n\nNext.",
        "It costs .5. then more.",
        "It--S. Bach played.",
        "Up 1--2. the rest.",
        "Well,--yes. no.",
        "One.\n\x1f\x1c Two.",
        "Why?\n\x1c\nNext one.",
        "a. b?\n\x1d",
        "Hi.\n\x1e\x1cX. Y.",
    ],
)
def test_identical_on_edge_cases(text):
    assert punkt_fast.sentences(text) == _reference(text)


# --- generated text --------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _model_words() -> list[str]:
    """Words that make Punkt's second pass work: abbreviations, collocations, starters and
    words with every kind of orthographic context."""
    from punkt.data import english

    words: set[str] = set()
    for abbrev in sorted(english.ABBREV_TYPES)[::3]:
        words.update({abbrev + ".", abbrev.capitalize() + ".", abbrev.upper() + "."})
    for first, second in sorted(english.COLLOCATIONS):
        words.update({first + ".", first.upper() + ".", second, second.capitalize()})
    for starter in sorted(english.SENT_STARTERS):
        words.update({starter, starter.capitalize()})
    by_flags: dict[int, str] = {}
    for word, flags in sorted(english.ORTHO_CONTEXT.items()):
        by_flags.setdefault(flags, word)
    for word in by_flags.values():
        words.update({word, word.capitalize(), word + "."})
    return sorted(words)


_PIECES = [
    "Dr.",
    "Mr.",
    "Mrs.",
    "U.S.",
    "U.S.A.",
    "e.g.",
    "i.e.",
    "etc.",
    "No.",
    "St.",
    "vs.",
    "Inc.",
    "p.m.",
    "a.m.",
    "Ph.D.",
    "Fig.",
    "J.",
    "S.",
    "a.",
    "A.",
    "x.",
    "1.",
    "12.",
    "3.5",
    "1,000",
    "-5.",
    "5-",
    "2nd.",
    ".5",
    ".5.",
    ",5.",
    "a--J.",
    "x--1.",
    "--5.",
    "a,--",
    "...",
    "..",
    ". . .",
    ". .",
    ".",
    "?",
    "!",
    "?!",
    "!!",
    "--",
    "-",
    ",",
    ";",
    ":",
    "'",
    '"',
    "`",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "*",
    "**",
    "&",
    "#",
    "@",
    "%",
    "_",
    "\u2018",
    "\u2019",
    "\u201c",
    "\u201d",
    "\u00ab",
    "\u00bb",
    "The",
    "the",
    "This",
    "It",
    "It's",
    "However,",
    "and",
    "I",
    "i",
    "word",
    "Word",
    "WORD",
    "Bach",
    "Smith",
    "well-known",
    "a-b.",
    "e.g.,",
    "x.y",
    "x..y",
    "\u0130",
    "\u039f\u0394\u039f\u03a3",
    "\u03a3.",
    "caf\u00e9",
    "\u0663",
    "\u00b2",
    "\u00bd",
    "\u2160.",
    "x_y",
    "\u00c9t\u00e9",
    "\u0915\u093e\u0930",
]
_SEPARATORS = [
    " ",
    " ",
    " ",
    "  ",
    "",
    "",
    "\n",
    "\n\n",
    " \n",
    "\t",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1f",
    "\x85",
    "\u00a0",
    "\u2003",
    "\u2028",
    "\u3000",
]
_CHARS = "aAbZ .?!'\"()-,;:\n\t\u00a0\u201d\u00bb*1_\x1c"


@st.composite
def _texts(draw) -> str:
    words = st.sampled_from(_PIECES) | st.sampled_from(_model_words())
    parts = draw(st.lists(st.tuples(words, st.sampled_from(_SEPARATORS)), max_size=30))
    text = "".join(w + s for w, s in parts)
    if draw(st.booleans()):
        text = draw(st.sampled_from(_SEPARATORS)) + text
    return text


_settings = settings(
    max_examples=2000, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@_settings
@given(_texts())
def test_identical_on_generated_text(text):
    assert punkt_fast.sentences(text) == _reference(text)


@_settings
@given(st.text(alphabet=_CHARS, max_size=60))
def test_identical_on_generated_characters(text):
    assert punkt_fast.sentences(text) == _reference(text)


@_settings
@given(st.one_of(_texts(), st.text(alphabet=_CHARS, max_size=60)))
def test_word_tokenizer_expression_is_nltks(text):
    """The greedy restatement of Punkt's word tokenizer splits every line as NLTK's does."""
    from nltk.tokenize.punkt import PunktLanguageVars

    for line in text.split("\n"):
        assert punkt_fast._WORD_TOKEN.findall(line) == PunktLanguageVars().word_tokenize(line)


# --- the character facts the shortcuts rely on ------------------------------------------


def test_unicode_facts_behind_the_shortcuts():
    """Checked over every code point, for the installed Python and ``regex``:

    * an alphanumeric character (``str.isalnum``) is never whitespace, non-word punctuation,
      a word-start exclusion, or ``. , -`` for Punkt's tokenizer, so ``<alnum run>.`` is one
      token;
    * on ASCII, regex's ``\\s`` is ``string.whitespace`` and ``\\d`` is ``0-9``.
    """
    every = "".join(chr(i) for i in range(sys.maxunicode + 1) if not 0xD800 <= i < 0xE000)
    alnum = "".join(c for c in every if c.isalnum())
    assert not regex.search(r"\s", alnum)
    assert not set(alnum) & (punkt_fast._NONWORD_SET | set('("`{[:;&#*@)}]-,.!?'))
    ascii_chars = "".join(map(chr, range(128)))
    assert "".join(regex.findall(r"\s", ascii_chars)) == "".join(sorted(string.whitespace))
    assert "".join(regex.findall(r"\d", ascii_chars)) == string.digits


# --- word_tokenize: NLTK's Treebank split, with steps that cannot match skipped -----------


def _treebank_reference(sentence: str) -> list[str]:
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer().tokenize(sentence)


def test_word_tokenize_identical_on_real_answers():
    texts = [r["response"] for r in read_jsonl(shared("ifeval/gpt4_responses.jsonl"))]
    texts += [r["response"] for r in read_jsonl(shared("ifbench/sample_output.jsonl"))]
    for text in texts:
        expected = [w for s in _reference(text) for w in _treebank_reference(s)]
        assert nlp.word_tokenize(text) == expected, text[:200]
    sentences = {s for t in texts for v in Text(t).loose_variants for s in nlp.sent_tokenize(v.raw)}
    for sentence in sentences:
        assert list(nlp._treebank_tokens.__wrapped__(sentence)) == _treebank_reference(sentence)


def test_every_treebank_step_is_known():
    """Only the whitespace squeeze runs unconditionally: NLTK's patterns are the ones the
    skip table was written for (a changed pattern would run always, correct but slower)."""
    head, tail, contractions, words = nlp._treebank_steps()
    unfiltered = [sub.__self__.pattern for sub, _, needs in head + tail if needs is None]
    assert unfiltered == [r"\s+"]
    assert words is not None and len(words) == len(contractions) == 10


_TREEBANK_PIECES = [
    "cannot",
    "CanNot",
    "gonna",
    "GOTTA",
    "gimme",
    "lemme",
    "wanna",
    "more'n",
    "d'ye",
    "'tis",
    "'Twas",
    "'twas",
    "don't",
    "DON'T",
    "I'm",
    "they'll",
    "we're",
    "you've",
    "it's",
    "Bob's",
    "o'clock",
    "'quoted'",
    "''",
    "``",
    '"',
    "'",
    "`",
    "\u201c",
    "\u201d",
    "\u2018",
    "\u2019",
    "\u00ab",
    "\u00bb",
    "\u201e",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "--",
    "-",
    "\u2013",
    "\u2014",
    "\u2012",
    "\u2015",
    ".",
    "..",
    "...",
    ",",
    ":",
    ";",
    "@",
    "#",
    "$",
    "%",
    "&",
    "*",
    "?",
    "!",
    "3.5",
    "1,000",
    "3:30",
    "a",
    "A",
    "word",
    "U.S.",
    "e.g.",
    "\u017ftis",
    "'ti\u017f",
    "\u212a",
    "caf\u00e9",
    "na\u00efve",
    "\x1c",
    "\u00a0",
    "g\u0130mme",
    "G\u0131MME",
    "wanna",
]


@pytest.mark.parametrize(
    "sentence",
    [
        "",
        "I cannot go, gonna stay.",
        "You g\u0130mme that.",
        "'Tis true.",
        'He said "hi" -- then left...',
        "\u201cQuoted\u201d \u2014 and \u00abthis\u00bb (really) [ok] {no} <yes>; @#$%&*?!",
        "Bob's dogs' toys.",
    ],
)
def test_treebank_tokens_identical_on_edge_cases(sentence):
    assert list(nlp._treebank_tokens.__wrapped__(sentence)) == _treebank_reference(sentence)


@_settings
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_TREEBANK_PIECES),
            st.sampled_from(["", " ", " ", "  ", "\n", "\t", "\x1c", "\u00a0"]),
        ),
        max_size=25,
    ).map(lambda parts: "".join(w + s for w, s in parts))
)
def test_treebank_tokens_identical_on_generated_text(sentence):
    assert list(nlp._treebank_tokens.__wrapped__(sentence)) == _treebank_reference(sentence)
