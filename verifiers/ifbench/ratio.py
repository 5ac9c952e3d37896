"""ratio:* — stopword share, sentence-type balance, equal sentence lengths, trigram overlap."""

from __future__ import annotations

from ..draws import PROMPT
from ..registry import constraint
from ..text import Text
from ._util import crash, english_stopwords, sentences


@constraint(
    "ratio:stop_words",
    instruction="Stop words may make up no more than {percentage}% of the words in your answer.",
    pseudo="w = findall(r'\\w+', response); "
    "assert w and 100 * count_stopwords(w) / len(w) <= {percentage}",
    draw={"percentage": range(30, 56, 5)},
)
def stop_words(t: Text, percentage: int) -> bool:
    words = t.words
    if not words:
        crash(t.profile, "ratio:stop_words: the answer has no \\w+ words (division by zero)")
        return False
    stop = english_stopwords()
    # "don't" is two \w+ words, "don" and "t", and both are stopwords.
    count = sum(1 for w in words if w.lower() in stop)
    return (count / len(words)) * 100 <= percentage


def _ending_counts(t: Text) -> tuple[int, int, int]:
    sents = sentences(t)
    return (
        sum(1 for s in sents if s.endswith(".")),
        sum(1 for s in sents if s.endswith("?")),
        sum(1 for s in sents if s.endswith("!")),
    )


@constraint(
    "ratio:sentence_type",
    instruction="Write twice as many declarative sentences as questions.",
    pseudo="s = sentences(response); "
    "assert count(x.endswith('.') for x in s) == 2 * count(x.endswith('?') for x in s)",
)
def sentence_type(t: Text) -> bool:
    # Only the very last character counts: a closing quote or an emoji hides the period.
    declarative, interrogative, _ = _ending_counts(t)
    return declarative == 2 * interrogative


@constraint(
    "ratio:sentence_balance",
    instruction="Use equally many declarative, interrogative and exclamatory sentences.",
    pseudo="s = sentences(response); "
    "assert count(ends('.')) == count(ends('?')) == count(ends('!'))",
)
def sentence_balance(t: Text) -> bool:
    declarative, interrogative, exclamatory = _ending_counts(t)
    return declarative == interrogative == exclamatory


@constraint(
    "ratio:sentence_words",
    instruction="Answer in exactly three sentences that all have the same number of characters, "
    "and never use a word twice.",
    pseudo="s = sentences(response); assert len(s) == 3 and len({{len(strip(x)) for x in s}}) == 1",
)
def sentence_words(t: Text) -> bool:
    # The reference never checks the "no word twice" half of the request.
    sents = sentences(t)
    return len(sents) == 3 and len({len(s.strip()) for s in sents}) == 1


def _char_trigrams(s: str) -> set[str]:
    return {s[i : i + 3] for i in range(len(s) - 2)}


@constraint(
    "ratio:overlap",
    instruction="Keep the trigram overlap between your answer and the reference text of this "
    "request at {percentage}% (plus or minus 2%).",
    pseudo="r = trigrams(response); assert r and "
    "{percentage} - 2 <= 100 * len(r & trigrams({reference_text!r})) / len(r) "
    "<= {percentage} + 2",
    draw={"reference_text": PROMPT, "percentage": range(10, 51, 5)},
)
def overlap(t: Text, reference_text: str, percentage: int) -> bool:
    # Character trigrams of the raw strings, as sets (nltk.ngrams over a str).
    mine = _char_trigrams(t.raw)
    if not mine:
        crash(t.profile, "ratio:overlap: the answer has fewer than 3 characters (division by zero)")
        return False
    share = len(mine & _char_trigrams(reference_text)) / len(mine)
    return percentage - 2 <= share * 100 <= percentage + 2
