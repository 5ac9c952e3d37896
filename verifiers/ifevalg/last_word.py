"""last_word:* — the last word of every sentence, or of the whole response."""

from __future__ import annotations

import random
import re
from typing import Any

from ..draws import Word
from ..profiles import Profile
from ..registry import ReferenceCrash, constraint
from ..text import Text
from ._util import draw_keywords, first_if_list

_NOT_WORD = re.compile(r"[^\w\s]")  # deleted from the last token: "end)!" -> "end"


def _bare(token: str) -> str:
    return _NOT_WORD.sub("", token).lower()


def _last_word_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a list takes its first element; a falsy word is drawn from the
    keyword list; the word is stripped."""
    word = first_if_list(kwargs["last_word"]) or draw_keywords(rng)[0]
    return {"last_word": word.strip()}


@constraint(
    "last_word:last_word_sent",
    instruction="The last word of each sentence, before punctuation, should be the word "
    "{last_word}.",
    pseudo="assert all(lower(sub(r'[^\\w\\s]', '', split(s)[-1])) == lower({last_word!r}) "
    "for s in rule_sentences(response))",
    prepare=_last_word_setup,
    draw={"last_word": Word()},
)
def last_word_sent(t: Text, last_word: str | list[str] = "") -> bool:
    want = first_if_list(last_word).lower()  # a str once bound; a list only if called unbound
    for sentence in t.rule_sentences:
        tokens = sentence.split()
        if not tokens:
            raise ReferenceCrash(
                "last_word:last_word_sent: the rule-based splitter produced an empty sentence "
                "(a literal <stop> marker in the answer); the reference raises IndexError here"
            )
        if _bare(tokens[-1]) != want:  # a punctuation-only sentence gives "": fail
            return False
    return True


def _answer_word_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy word is drawn from the keyword list; the word is stripped."""
    return {"last_word": (kwargs["last_word"] or draw_keywords(rng)[0]).strip()}


@constraint(
    "last_word:last_word_answer",
    instruction="The last word of your response should be the word {last_word}.",
    pseudo="assert lower(sub(r'[^\\w\\s]', '', split(response)[-1])) == lower({last_word!r})",
    prepare=_answer_word_setup,
    draw={"last_word": Word()},
)
def last_word_answer(t: Text, last_word: str = "") -> bool:
    tokens = t.ws_tokens
    if not tokens:  # drivers reject a blank answer before this; the bare reference raises
        raise ReferenceCrash(
            "last_word:last_word_answer: blank answer; the reference raises IndexError (every "
            "driver scores a blank answer as not followed before calling it)"
        )
    return _bare(tokens[-1]) == last_word.lower()
