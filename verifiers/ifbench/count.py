"""count:* — how many words, names, numbers, pronouns, conjunctions, marks and keywords."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from ..draws import Word
from ..registry import constraint
from ..text import Text
from . import PERSON_NAMES_SUBSTRING, PRONOUNS_2025
from ._util import delete_p, strip_p, word_tokens_of

PositiveInt = Annotated[int, Field(ge=1)]


def _narrow_band(rng: random.Random, drawn: Mapping[str, Any]) -> int:
    """``max_words`` for a drawn ``min_words``: a band 5-10 % wide, as the reference draws it
    (every range in its data is that narrow)."""
    low = drawn["min_words"]
    return low + rng.randint(max(1, low // 20), max(2, low // 10))


@constraint(
    "count:word_count_range",
    instruction="Your answer must be between {min_words} and {max_words} words long.",
    pseudo="assert {min_words} <= len(findall(r'\\w+', response)) <= {max_words}",
    draw={"min_words": range(100, 501, 10), "max_words": _narrow_band},
)
def word_count_range(t: Text, min_words: int, max_words: int) -> bool:
    return min_words <= len(t.words) <= max_words


@constraint(
    "count:unique_word_count",
    instruction="Use at least {N} different words in your answer.",
    pseudo="assert len({{strip_p(w) for w in split(lower(response))}}) >= {N}",
    draw={"N": range(30, 81, 10)},
)
def unique_word_count(t: Text, N: int) -> bool:
    # A token made only of punctuation strips to "", and "" counts as one word.
    return len({strip_p(w) for w in t.lower.split()}) >= N


_CONJUNCTIONS = frozenset({"and", "but", "for", "nor", "or", "so", "yet"})


@constraint(
    "count:conjunctions",
    instruction="Use at least {small_n} different coordinating conjunctions in your answer.",
    pseudo="assert len({{w for w in split(response) if lower(strip_p(w)) in FANBOYS}}) "
    ">= {small_n}",
    draw={"small_n": range(2, 6)},
)
def conjunctions(t: Text, small_n: int) -> bool:
    # The reference collects the raw tokens, so "and", "And" and "and," are three conjunctions.
    return len({w for w in t.ws_tokens if strip_p(w).lower() in _CONJUNCTIONS}) >= small_n


PERSON_NAMES = (
    "Emma",
    "Liam",
    "Sophia",
    "Jackson",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Isabella",
    "Mason",
    "Mia",
    "Ethan",
    "Charlotte",
    "Alexander",
    "Amelia",
    "Benjamin",
    "Harper",
    "Leo",
    "Zoe",
    "Daniel",
    "Chloe",
    "Samuel",
    "Lily",
    "Matthew",
    "Grace",
    "Owen",
    "Abigail",
    "Gabriel",
    "Ella",
    "Jacob",
    "Scarlett",
    "Nathan",
    "Victoria",
    "Elijah",
    "Layla",
    "Nicholas",
    "Audrey",
    "David",
    "Hannah",
    "Christopher",
    "Penelope",
    "Thomas",
    "Nora",
    "Andrew",
    "Aria",
    "Joseph",
    "Claire",
    "Ryan",
    "Stella",
    "Jonathan",
)
# One pass finds every listed name that occurs as a whole word: at most one name can match
# as a whole word at any position, and no whole word starts inside another, so scanning for
# the alternation sees the same names as searching for each name on its own.
_WHOLE_NAME = re.compile(r"\b(?:" + "|".join(map(re.escape, PERSON_NAMES)) + r")\b")


@constraint(
    "count:person_names",
    instruction="Mention at least {N} different people by name, choosing from: "
    + ", ".join(PERSON_NAMES)
    + ".",
    pseudo="assert count(n for n in NAMES if search(r'\\b' + n + r'\\b', response)) >= {N}",
    draw={"N": range(3, 16)},
)
def person_names(t: Text, N: int) -> bool:
    if t.profile.has(PERSON_NAMES_SUBSTRING):
        found = sum(1 for name in PERSON_NAMES if name in t.raw)
    else:  # whole words, case-sensitive: "emma" and "Emmanuel" are not Emma
        found = len(set(_WHOLE_NAME.findall(t.raw)))
    return found >= N


_DIGITS = re.compile(r"\d+")


@constraint(
    "count:numbers",
    instruction="Your answer must contain exactly {N} numbers.",
    pseudo="assert len(findall(r'\\d+', delete_p(response))) == {N}",
    draw={"N": range(2, 16)},
)
def numbers(t: Text, N: int) -> bool:
    # Punctuation goes first, so 3.14, 1,000 and 2024-05-01 are one number each.
    return len(_DIGITS.findall(delete_p(t.raw))) == N


_JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")


@constraint(
    "count:words_japanese",
    instruction="Every word at a position that is a multiple of {N} must be a Japanese word.",
    pseudo="assert all(has_kana_or_kanji(w) for i, w in enumerate(split(response), 1) "
    "if i % {N} == 0 and strip_p(w) and not isdigit(strip_p(w)))",
    draw={"N": range(5, 21)},
)
def words_japanese(t: Text, N: PositiveInt) -> bool:
    for position, token in enumerate(t.ws_tokens, start=1):
        if position % N:
            continue
        word = strip_p(token)
        if word and not word.isdigit() and not _JAPANESE.search(word):
            return False
    return True


# The set the reference has used since 2026-05-01; before, only the 31 personal, possessive and
# reflexive forms counted (profile flag ifbench-pronouns-2025).
PRONOUNS = frozenset(
    """
    i me we us you he him she her it they them my mine our ours your yours his hers its their
    theirs myself ourselves yourself yourselves himself herself itself themselves this that these
    those who whom whose which what whoever whomever whatever whichever anybody anyone anything
    everybody everyone everything nobody nothing somebody someone something each either neither
    both all some any none
""".split()
)
PRONOUNS_2025_SET = frozenset(
    """
    i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves
""".split()
)


@constraint(
    "count:pronouns",
    instruction="Your answer must contain at least {N} pronouns.",
    pseudo="assert count(w for w in word_tokenize(lower(replace(response, '/', ' '))) "
    "if w in PRONOUNS) >= {N}",
    draw={"N": range(5, 31)},
)
def pronouns(t: Text, N: int) -> bool:
    text = t.raw.replace("/", " ").lower()  # "she/her" counts twice
    if t.profile.has(PRONOUNS_2025):
        count = sum(1 for w in delete_p(text).split() if w in PRONOUNS_2025_SET)
    else:
        count = sum(1 for w in word_tokens_of(text) if w in PRONOUNS)
    return count >= N


_MARKS = frozenset(".,!?;:")


@constraint(
    "count:punctuation",
    instruction="Use every standard punctuation mark at least once (period, comma, "
    "exclamation mark, question mark, semicolon, colon), plus an interrobang (?! or ‽).",
    pseudo="assert has_interrobang(response) and set('.,!?;:') <= "
    "set(drop_one_interrobang(response))",
)
def punctuation(t: Text) -> bool:
    raw = t.raw
    if not ("!?" in raw or "?!" in raw or "‽" in raw):
        return False
    # One interrobang pair is taken out and does not count toward "!" and "?"; "‽" takes
    # nothing out.
    rest = raw.replace("?!", "", 1)
    if len(rest) == len(raw):
        rest = raw.replace("!?", "", 1)
    return _MARKS <= set(rest)


_TIMES = (1, 2, 3, 5, 7)


@constraint(
    "count:keywords_multiple",
    instruction="Use the word {keyword1} once, {keyword2} twice, {keyword3} three times, "
    "{keyword4} five times and {keyword5} seven times.",
    pseudo="assert [lower(response).count(lower(k)) for k in ({keyword1!r}, {keyword2!r}, "
    "{keyword3!r}, {keyword4!r}, {keyword5!r})] == [1, 2, 3, 5, 7]",
    draw={f"keyword{i}": Word() for i in range(1, 6)},
)
def keywords_multiple(
    t: Text, keyword1: str, keyword2: str, keyword3: str, keyword4: str, keyword5: str
) -> bool:
    # Substring counts, case-insensitive: "cat" is counted inside "category".
    keywords = (keyword1, keyword2, keyword3, keyword4, keyword5)
    return all(t.lower.count(k.strip().lower()) == n for k, n in zip(keywords, _TIMES))
