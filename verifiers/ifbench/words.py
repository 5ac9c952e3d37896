"""words:* — constraints on the words themselves: letters, vowels, lengths, order, position."""

from __future__ import annotations

import string
from collections import Counter
from itertools import pairwise
from typing import Annotated

from pydantic import Field

from ..draws import Word
from ..registry import constraint
from ..text import Text
from . import WORD_POSITIONS_2025
from ._util import (
    P,
    crash,
    delete_p,
    pos_tagger,
    sentences,
    strip_p,
    syllable_counter,
    word_tokens_of,
)

PositiveInt = Annotated[int, Field(ge=1)]
_ALPHABET = string.ascii_lowercase


@constraint(
    "words:alphabet",
    instruction="Start each word with the letter that follows the first letter of the word "
    "before it in the alphabet, going from Z back to A.",
    pseudo="w = split(delete_p(response)); assert w and is_ascii_letter(w[0][0]) and "
    "all(lower(b[0]) == next_letter(lower(a[0])) for a, b in pairs(w))",
)
def alphabet(t: Text) -> bool:
    words = delete_p(t.raw).split()
    if not words:
        crash(t.profile, "words:alphabet: no words left once punctuation is removed")
        return False
    letter = words[0][0].lower()
    if letter not in _ALPHABET:  # digits and accented letters fail
        return False
    # The chain is anchored on the first word: each later word needs the successor of the
    # letter expected before it, not of its own predecessor's letter.
    for word in words[1:]:
        letter = _ALPHABET[(_ALPHABET.index(letter) + 1) % 26]
        if word.lower()[0] != letter:
            return False
    return True


_VOWELS = frozenset("aeiou")


@constraint(
    "words:vowel",
    instruction="Write a single paragraph whose words use no more than three different vowels.",
    pseudo="r = strip(response); assert '\\n' not in r and len(set(lower(r)) & set('aeiou')) <= 3",
)
def vowel(t: Text) -> bool:
    lines = t.stripped.split("\n")
    return len(lines) == 1 and len(set(lines[0].lower()) & _VOWELS) <= 3


_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxyz")


def _has_cluster(word: str) -> bool:
    return any(a in _CONSONANTS and b in _CONSONANTS for a, b in pairwise(word))


@constraint(
    "words:consonants",
    instruction="Every word you write must contain at least two consonants in a row.",
    pseudo="assert all(has_two_adjacent_consonants(w) for w in split(lower(strip(response))))",
)
def consonants(t: Text) -> bool:
    # "y" counts as a consonant; punctuation and digits break a run.
    return all(_has_cluster(w) for w in t.lower.strip().split())


@constraint(
    "words:palindrome",
    instruction="Include at least ten palindromes that are single words of five or more letters.",
    pseudo="assert count(w for w in split(lower(delete_p(response))) "
    "if w == w[::-1] and len(w) >= 5) >= 10",
)
def palindrome(t: Text) -> bool:
    # Repeats count, and so do digit strings such as 12321.
    words = delete_p(t.raw).lower().split()
    return sum(1 for w in words if len(w) >= 5 and w == w[::-1]) >= 10


_PRIMES = frozenset(n for n in range(2, 100) if all(n % d for d in range(2, n)))


@constraint(
    "words:prime_lengths",
    instruction="Only use words whose length is a prime number.",
    pseudo="assert all(len(w) in PRIMES_UNDER_100 for w in split(delete_p(response)))",
)
def prime_lengths(t: Text) -> bool:
    return all(len(w) in _PRIMES for w in delete_p(t.raw).split())


# The tag of the first token depends on tokens 0-2 only (the perceptron's features look two
# words ahead), so tagging a short prefix gives the tag that tagging the whole answer gives.
_TAGGER_WINDOW = 8


@constraint(
    "words:start_verb",
    instruction="Begin your answer with a verb.",
    pseudo="assert 'VB' in pos_tag(word_tokenize(response))[0][1]",
)
def start_verb(t: Text) -> bool:
    tokens = t.word_tokens
    if not tokens:
        return False
    return "VB" in pos_tagger().tag(tokens[:_TAGGER_WINDOW])[0][1]


@constraint(
    "words:repeats",
    instruction="Do not use any word more than {small_n} times.",
    pseudo="assert max(Counter(split(delete_p(lower(response)))).values()) <= {small_n}",
    draw={"small_n": range(2, 6)},
)
def repeats(t: Text, small_n: int) -> bool:
    counts = Counter(delete_p(t.lower).split())
    return all(n <= small_n for n in counts.values())


@constraint(
    "words:odd_even_syllables",
    instruction="Alternate between words with an odd and an even number of syllables.",
    pseudo="p = [syllables(w) % 2 for w in split(lower(delete_p(response)))]; "
    "assert all(a != b for a, b in pairs(p))",
)
def odd_even_syllables(t: Text) -> bool:
    count = syllable_counter()
    parities = [count(w) % 2 for w in delete_p(t.raw).lower().split() if w.strip()]
    return all(a != b for a, b in pairwise(parities))


@constraint(
    "words:last_first",
    instruction="The last word of each sentence must be the first word of the next sentence.",
    pseudo="assert all(lower(last_word(a)) == lower(first_word(b)) "
    "for a, b in pairs(sentences(response)))",
)
def last_first(t: Text) -> bool:
    sents = sentences(t)
    for before, after in pairwise(sents):
        last = before.rstrip(P + " ").split()
        first = after.lstrip(P + " ").split()
        if not last or not first:
            crash(t.profile, "words:last_first: a sentence has no word once punctuation is trimmed")
            return False
        # Punctuation inside the tokens stays: "Cats," does not equal "cats".
        if last[-1].lower() != first[0].lower():
            return False
    return True


@constraint(
    "words:paragraph_last_first",
    instruction="Each paragraph must end with the word it starts with; put each paragraph on "
    "its own line.",
    pseudo="assert all(w[0] == w[-1] "
    "for w in (split(strip_p(lower(strip(l)))) for l in lines(response)) if w)",
)
def paragraph_last_first(t: Text) -> bool:
    for line in t.lines:  # every line is a paragraph
        words = strip_p(line.strip().lower()).split()
        if words and words[0] != words[-1]:
            return False
    return True


@constraint(
    "words:no_consecutive",
    instruction="No two neighbouring words may start with the same letter.",
    pseudo="w = split(delete_p(lower(response))); assert all(a[0] != b[0] for a, b in pairs(w))",
)
def no_consecutive(t: Text) -> bool:
    words = delete_p(t.lower).split()
    return all(a[0] != b[0] for a, b in pairwise(words))


@constraint(
    "words:keywords_specific_position",
    instruction="Use the word {keyword} as word number {m} of sentence number {n}.",
    pseudo="s = sentences(response); w = alnum_tokens(s[{n} - 1]); "
    "assert lower(w[{m} - 1]) == lower({keyword!r})",
    draw={"keyword": Word(), "n": range(2, 11), "m": range(3, 16)},
)
def keywords_specific_position(t: Text, keyword: str, n: PositiveInt, m: PositiveInt) -> bool:
    sents = sentences(t)
    if len(sents) < n:
        return False
    tokens = word_tokens_of(sents[n - 1])
    if t.profile.has(WORD_POSITIONS_2025):  # every Treebank token, case-sensitive
        return len(tokens) >= m and tokens[m - 1] == keyword.strip()
    words = [w for w in tokens if any(c.isalnum() for c in w)]  # "don't" is "do" + "n't"
    return len(words) >= m and words[m - 1].lower() == keyword.strip().lower()


@constraint(
    "words:words_position",
    instruction="The second word of your answer and the second-to-last word must both be "
    "{keyword}.",
    pseudo="w = word_tokenize(response); "
    "assert lower(w[1]) == lower(w[-2 if w[-1] not in P else -3]) == lower({keyword!r})",
    draw={"keyword": Word()},
)
def words_position(t: Text, keyword: str) -> bool:
    tokens = t.word_tokens
    if len(tokens) < 2:
        return False
    keyword = keyword.strip()
    if t.profile.has(WORD_POSITIONS_2025):
        return tokens[1] == tokens[-2] == keyword
    # A final token that is a piece of string.punctuation (in practice one ASCII mark) is
    # skipped; a closing '' quote is not such a piece, so it is not.
    if tokens[-1] in P:
        if len(tokens) < 3:
            return False
        second_last = tokens[-3]
    else:
        second_last = tokens[-2]
    return tokens[1].lower() == second_last.lower() == keyword.lower()
