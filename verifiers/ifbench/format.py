"""format:* — brackets, quotes, fixed answers, layout, markup and templates."""

from __future__ import annotations

import re
import string
from itertools import pairwise

from ..registry import constraint
from ..text import Text
from . import CURLY_QUOTES, TITLE_CASE_2025
from ._util import P, crash, delete_p, is_emoji, sentences, split_sentences, strip_p

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())


@constraint(
    "format:parentheses",
    instruction="Nest brackets (round, square or curly) at least five levels deep.",
    pseudo="assert max_closed_bracket_depth(response) >= 5",
)
def parentheses(t: Text) -> bool:
    stack: list[str] = []
    deepest = 0
    for ch in t.raw:
        if ch in _OPENERS:
            stack.append(ch)
            deepest = max(deepest, len(stack))
        elif ch in _CLOSERS:
            if stack and _OPENERS[stack[-1]] == ch:
                stack.pop()
                # The first matching closer after reaching depth 5 decides; the outer levels
                # may stay open.
                if deepest >= 5:
                    return True
            else:  # a stray or mismatched closer throws away everything seen so far
                stack, deepest = [], 0
    return False


@constraint(
    "format:quotes",
    instruction="Put quotes inside quotes inside quotes, at least three levels deep, "
    "alternating double and single quotation marks.",
    pseudo="assert alternating_quote_depth(response) >= 3",
)
def quotes(t: Text) -> bool:
    # A quote equal to the innermost open one closes it, any other straight quote opens a
    # level; apostrophes are single quotes here, curly quotes are ignored.
    stack: list[str] = []
    deepest = 0
    for ch in t.raw:
        if stack and ch == stack[-1]:
            stack.pop()
            if deepest - len(stack) >= 3:
                return True
        elif ch == '"' or ch == "'":
            stack.append(ch)
            deepest = max(deepest, len(stack))
    return False


_LETTER_OPTIONS = re.compile(r"\W*[aA]\W*[bB]\W*[cC]\W*")


@constraint(
    "format:options",
    instruction="Answer with one of these options and nothing else: {options}.",
    pseudo="assert normalise(response) in [normalise(o) for o in split_options({options!r})]",
    draw={"options": ("yes/no/maybe", "I know or I don't know", "a), b), c), d)")},
)
def options(t: Text, options: str) -> bool:
    if "/" in options:
        separator = "/"
    elif "or" in options:  # a substring: an option containing "or" would be cut in two
        separator = "or"
    else:
        separator = ","
    choices = [o.strip() for o in options.split(separator)]
    if _LETTER_OPTIONS.match(options):  # letter options: the answer must be exactly "a)" etc.
        return t.raw in choices
    answer = strip_p(t.raw).lower()
    return any(strip_p(o).lower() == answer for o in choices)


@constraint(
    "format:newline",
    instruction="Put each word on its own line.",
    pseudo="r = delete_p(response); assert count_nonempty(split(strip(r), '\\n')) == len(split(r))",
)
def newline(t: Text) -> bool:
    text = delete_p(t.raw)
    # A line of spaces is not empty, so it counts as a line.
    lines = [line for line in text.strip().split("\n") if line != ""]
    return len(lines) == len(text.strip().split())


@constraint(
    "format:emoji",
    instruction="End every sentence with an emoji.",
    pseudo="assert all(ends_with_emoji(delete_p(s)) or starts_with_emoji(next(s)) "
    "for s in sentences(response))",
)
def emoji(t: Text) -> bool:
    sents = sentences(t)
    for i, sentence in enumerate(sents):
        core = delete_p(sentence).strip()
        if not core:
            crash(t.profile, "format:emoji: a sentence is empty once punctuation is removed")
            return False
        # The second-to-last character lets a variation selector (as in ❤️) end an emoji.
        if is_emoji(core[-1]) or is_emoji(core[-2] if len(core) > 1 else core[-1]):
            continue
        if i == len(sents) - 1:
            return False
        # Punkt often hands an emoji written after the period to the next sentence.
        following = delete_p(sents[i + 1]).strip()
        if not following or not is_emoji(following[0]):
            return False
    return True


@constraint(
    "format:line_indent",
    instruction="Indent each line more than the line before it, like a staircase.",
    pseudo="i = [leading_spaces(l) for l in nonblank_lines(response)]; "
    "assert all(a < b for a, b in pairs(i))",
)
def line_indent(t: Text) -> bool:
    lines = list(t.lines)
    # The reference removes blank lines from the list while iterating over it, so of two
    # blank lines in a row one survives. Same walk, same removals (list.remove takes the first
    # equal item):
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            lines.remove(lines[i])
        i += 1
    indents = [len(line) - len(line.lstrip(" ")) for line in lines]  # spaces only, not tabs
    return all(a < b for a, b in pairwise(indents))


_QUOTE_TAIL = string.digits + P.replace('"', "")


@constraint(
    "format:quote_unquote",
    instruction="Follow every quoted phrase with an explanation that is not in quotes.",
    pseudo="r = remove_whitespace(replace(response, '\\'\"\\'', '')); "
    "assert '\"\"' not in r and not r.strip(DIGITS_AND_P_BUT_QUOTE).endswith('\"')",
)
def quote_unquote(t: Text) -> bool:
    text = t.raw
    if t.profile.has(CURLY_QUOTES):
        text = text.replace("“", '"').replace("”", '"')
    text = text.replace("'\"'", "")  # the character '"' written as a quoted literal
    text = "".join(text.split())
    if '""' in text:  # two quoted phrases in a row, or an empty quote
        return False
    tail = text.strip(_QUOTE_TAIL)
    if not tail:
        crash(
            t.profile, "format:quote_unquote: nothing left after stripping digits and punctuation"
        )
        return True
    return tail[-1] != '"'


@constraint(
    "format:list",
    instruction="Answer with a list whose items are marked with {sep} instead of bullet points.",
    pseudo="assert count(findall(escape({sep!r}), response)) >= 2",
    draw={"sep": ("!?!?", "SEPARATOR", "-")},
)
def list_(t: Text, sep: str) -> bool:
    # Anywhere counts, not only at a line start; for "-", hyphens inside words count.
    return len(re.findall(re.escape(sep), t.raw)) >= 2


@constraint(
    "format:thesis",
    instruction="Open every section with a thesis statement in italics, marked with HTML tags.",
    pseudo="s = response[find('<i>' or '<em>'):]; e = s.find('</i>' or '</em>'); "
    "assert strip(s[3:e]) and strip(s[e + 4:])",
)
def thesis(t: Text) -> bool:
    start = t.raw.find("<i>")
    if start == -1:
        start = t.raw.find("<em>")
        if start == -1:
            return False
    rest = t.raw[start:]
    end = rest.find("</i>")
    if end == -1:
        end = rest.find("</em>")
        if end == -1:
            return False
    # The offsets assume <i>…</i>; with <em> a stray ">" counts as text after the thesis.
    return bool(rest[3:end].strip()) and bool(rest[end + 4 :].strip())


@constraint(
    "format:sub-bullets",
    instruction="Use bullet points marked with *, and give each bullet at least one sub-bullet "
    "marked with -.",
    pseudo="assert all('-' in piece for piece in split(response, '*')[1:])",
)
def sub_bullets(t: Text) -> bool:
    # No "*" at all passes, and loose mode (which deletes every "*") always passes.
    return all("-" in piece for piece in t.raw.split("*")[1:])


@constraint(
    "format:no_bullets_bullets",
    instruction="Write at least two sentences ending in a period, then at least two bullet "
    "points marked with *, and nothing after the bullets.",
    pseudo="assert sentences_before_first_bullet(response) >= 2 and bullets(response) >= 2 and "
    "only_bullets_after_first(response)",
)
def no_bullets_bullets(t: Text) -> bool:
    sentence_count = bullet_count = 0
    # The reference keeps the last prose line's sentence list as its "still in prose" flag: an
    # empty prose line (no sentences) makes the next prose line fail.
    in_prose: bool | list[str] = True
    for line in t.lines:
        if line.strip().startswith("*"):
            in_prose = False
            if sentence_count < 2:
                return False
            bullet_count += 1
        elif in_prose:
            in_prose = split_sentences(line.strip(), t.profile)
            sentence_count += len(in_prose)
        else:  # anything after the first bullet that is not a bullet, an empty line too
            return False
    return bullet_count >= 2


@constraint(
    "format:title_case",
    instruction="Write your entire answer in title case.",
    pseudo="assert all(is_title_token(w) for w in word_tokenize(response))",
)
def title_case(t: Text) -> bool:
    for token in t.word_tokens:
        head, rest = token[0], token[1:]
        if not t.profile.has(TITLE_CASE_2025):
            if not head.isalpha():
                continue
            if not rest:  # a one-letter token must not be lower case
                if head.islower():
                    return False
                continue
        if head.isupper() and rest.islower():
            continue
        # Lower-case start with an all-lower or all-upper rest fails ("the", "tHE"); mixed
        # case such as "iPhone" passes, and so does anything starting upper case.
        if head.islower() and (rest.isupper() or rest.islower()):
            return False
    return True


@constraint(
    "format:output_template",
    instruction="Use exactly this template for your answer: My Answer: [answer] My Conclusion: "
    "[conclusion] Future Outlook: [outlook]",
    pseudo="assert all(f in response for f in ('My Answer:', 'My Conclusion:', 'Future Outlook:'))",
)
def output_template(t: Text) -> bool:
    return all(field in t.raw for field in ("My Answer:", "My Conclusion:", "Future Outlook:"))


@constraint(
    "format:no_whitespace",
    instruction="Do not use any whitespace in your answer.",
    pseudo="assert not any(isspace(c) for c in response)",
)
def no_whitespace(t: Text) -> bool:
    return not any(ch.isspace() for ch in t.raw)
