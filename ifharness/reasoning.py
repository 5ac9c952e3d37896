"""Splitting a reasoning model's trace from its answer, by model family.

Constraints are checked on the answer. A harness that scores the trace by accident reports
a reasoning model as far worse than it is (lm-eval #3161: Qwen3 at 0.28 instead of ~0.83), so
the split is explicit, per family, recorded in ``run.json`` and kept: both halves are written
to ``completions.jsonl``.

Offline ``LLM.chat`` applies no reasoning parser, so the split happens here, on the text:

* the answer is what follows the **last** end tag: some models close their thinking
  several times (``</think> … </think>``), and everything before the last close is trace;
* the opening tag may be missing: chat templates that open the block in the prompt
  (DeepSeek-R1's ``<think>\\n``) make the model's text start inside it;
* a text that opened a block and never closed it was cut off while thinking. What is scored
  then is a named policy (``UNTERMINATED_POLICIES``, applied in :func:`apply_unterminated`
  for every parser, recorded in run.json ``reasoning_parser.unterminated`` and counted in
  ``generation.unterminated_reasoning``): ``empty`` (the default) keeps all of it as trace
  and scores an empty answer, i.e. not followed (``finish_reason`` usually says ``length``),
  rather than letting a half thought be judged as an answer; ``raw`` scores the whole text
  as generated, as open-instruct's ``remove_thinking_section`` does when no ``</think>``
  comes (``shared/specs/ifevalg.md`` §7).

A parser is plain data (picklable, so data-parallel workers receive it). ``register`` adds
one; ``FAMILIES`` maps model names to parsers, first match wins; ``for_model`` picks one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .errors import IfharnessError

#: What is scored when a reasoning block opened and never closed (name -> description).
UNTERMINATED_POLICIES: dict[str, str] = {
    "empty": "a trace that never closes is all trace: the answer is empty and scores as not "
    "followed (default)",
    "raw": "a trace that never closes is not split off: the whole text as generated is scored",
}
DEFAULT_UNTERMINATED = "empty"


@dataclass(frozen=True)
class Split:
    reasoning: str | None  # None: the text held no trace
    answer: str
    # the text opened a reasoning block and never closed it (cut off while thinking)
    unterminated: bool = field(default=False, compare=False)


def check_unterminated_policy(policy: str) -> str:
    if policy not in UNTERMINATED_POLICIES:
        raise IfharnessError(
            f"unknown policy {policy!r} for reasoning that never closes: choose one of "
            f"{', '.join(UNTERMINATED_POLICIES)}"
        )
    return policy


def apply_unterminated(split: Split, text: str, policy: str) -> Split:
    """The one place the unterminated-trace policy is applied (see the module docstring)."""
    if not split.unterminated or policy == "empty":
        return split
    return Split(None, text, unterminated=True)


@dataclass(frozen=True)
class TagParser:
    """Reasoning between an opening and a closing tag, the answer after the last close."""

    name: str
    start_tags: tuple[str, ...] = ()
    end_tags: tuple[str, ...] = ()
    # The chat template's generation prompt already opened the block: a text with no end
    # tag is all trace (cut off), not all answer.
    opens_in_prompt: bool = False
    description: str = ""
    unterminated: str = DEFAULT_UNTERMINATED  # UNTERMINATED_POLICIES

    def split(self, text: str) -> Split:
        return apply_unterminated(self._split(text), text, self.unterminated)

    def _split(self, text: str) -> Split:
        if not self.end_tags:
            return Split(None, text)
        end_at, end_len = -1, 0
        for tag in self.end_tags:
            at = text.rfind(tag)
            if at >= 0 and at + len(tag) > end_at + end_len:
                end_at, end_len = at, len(tag)
        if end_at >= 0:
            return Split(
                self._strip_start(text[:end_at]).strip(), text[end_at + end_len :].lstrip()
            )
        head = text.lstrip()
        for tag in self.start_tags:
            if head.startswith(tag):  # opened, never closed: cut off while thinking
                return Split(head[len(tag) :].strip(), "", unterminated=True)
        if self.opens_in_prompt:
            return Split(text.strip(), "", unterminated=True)
        return Split(None, text)

    def _strip_start(self, head: str) -> str:
        stripped = head.lstrip()
        for tag in self.start_tags:
            if stripped.startswith(tag):
                return stripped[len(tag) :]
        return head


@dataclass(frozen=True)
class ChannelParser:
    """OpenAI harmony format (gpt-oss): an ``analysis`` channel, then a ``final`` one.

    With special tokens kept the markers read ``<|channel|>final<|message|>``; vLLM's default
    detokenization drops them and leaves ``analysis…assistantfinal…``. Both are handled.
    """

    name: str = "harmony"
    description: str = "gpt-oss harmony channels (analysis → final)"
    unterminated: str = DEFAULT_UNTERMINATED  # UNTERMINATED_POLICIES

    _FINAL = re.compile(r"<\|channel\|>final<\|message\|>")
    _BARE_FINAL = re.compile(r"assistantfinal")
    _ANALYSIS = re.compile(
        r"^\s*(?:<\|start\|>assistant)?(?:<\|channel\|>)?analysis(?:<\|message\|>)?"
    )
    _TAIL = re.compile(r"(?:<\|end\|>|<\|return\|>)\s*$")

    def split(self, text: str) -> Split:
        return apply_unterminated(self._split(text), text, self.unterminated)

    def _split(self, text: str) -> Split:
        marks = list(self._FINAL.finditer(text))
        if not marks and self._ANALYSIS.match(text):
            marks = list(self._BARE_FINAL.finditer(text))
        if marks:
            last = marks[-1]
            trace = self._ANALYSIS.sub("", text[: last.start()], count=1)
            trace = re.sub(r"(?:<\|end\|>)?(?:<\|start\|>assistant)?(?:<\|channel\|>)?$", "", trace)
            return Split(trace.strip(), self._TAIL.sub("", text[last.end() :]))
        if self._ANALYSIS.match(text):
            return Split(self._ANALYSIS.sub("", text, count=1).strip(), "", unterminated=True)
        return Split(None, text)


Parser = TagParser | ChannelParser

_REGISTRY: dict[str, Parser] = {}


def register(parser: Parser) -> Parser:
    if parser.name in _REGISTRY:
        raise ValueError(f"reasoning parser {parser.name!r} is already registered")
    _REGISTRY[parser.name] = parser
    return parser


THINK_END = ("</think>", "</thinking>", "</reasoning>")
THINK_START = ("<think>", "<thinking>", "<reasoning>")

register(TagParser("none", description="no split: the whole text is the answer"))
register(
    TagParser(
        "think",
        THINK_START,
        THINK_END,
        description="<think>…</think> (also <thinking>, <reasoning>); split only where a tag is "
        "present; the answer follows the last end tag",
    )
)
register(
    TagParser(
        "think-open",
        THINK_START,
        THINK_END,
        opens_in_prompt=True,
        description="as 'think', for templates whose generation prompt opens the block "
        "(DeepSeek-R1): a text with no end tag is all trace",
    )
)
register(
    TagParser(
        "seed-think",
        ("<seed:think>",),
        ("</seed:think>",),
        description="ByteDance Seed-OSS <seed:think>…</seed:think>",
    )
)
register(
    TagParser(
        "granite",
        ("Here is my thought process:",),
        ("Here is my response:",),
        description="IBM Granite 3.x plain-text markers",
    )
)
register(ChannelParser())

# Model name (repo id or folder name, lower-cased) → parser; first match wins. A name that
# matches nothing gets 'think', which splits only where the text carries a tag: a model that
# does not think is left untouched, and one we did not list still has its trace removed.
THINKING_FAMILIES = (
    r"qwen3|qwq|glm-4\.[56]|glm-z1|phi-4-(mini-)?reasoning|olmo-3|smollm3|"
    r"magistral|exaone-4|hunyuan|minimax-m|kimi-k2|nemotron|ernie-4\.5"
)
FAMILIES: list[tuple[str, str]] = [
    (r"deepseek-r1|r1-distill", "think-open"),
    (r"gpt-oss", "harmony"),
    (r"seed-oss", "seed-think"),
    (r"granite-3", "granite"),
    (THINKING_FAMILIES, "think"),
]


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> Parser:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise IfharnessError(
            f"unknown reasoning parser {name!r}: choose one of {', '.join(names())}, or 'auto'"
        ) from None


def for_model(model: str, choice: str = "auto") -> Parser:
    """The parser named by ``choice``, or for ``auto`` the one of ``model``'s family."""
    if choice != "auto":
        return get(choice)
    lowered = model.lower()
    for pattern, name in FAMILIES:
        if re.search(pattern, lowered):
            return get(name)
    return get("think")


def split_all(parser: Parser, texts: Iterable[str]) -> list[Split]:
    return [parser.split(t) for t in texts]


def with_unterminated(parser: Parser, policy: str) -> Parser:
    """``parser`` applying ``policy`` to traces that never close (same name: the policy is
    recorded beside it in run.json)."""
    check_unterminated_policy(policy)
    return parser if parser.unterminated == policy else replace(parser, unterminated=policy)


def is_unterminated(parser: Parser, text: str) -> bool:
    """Whether ``parser`` finds a reasoning block in ``text`` that never closes (whatever
    the policy then does with it): what ``generation.unterminated_reasoning`` counts."""
    return parser.split(text).unterminated
