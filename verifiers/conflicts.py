"""Which constraint ids must not share one generated prompt: one ``conflicts.json`` per suite.

``verifiers/<suite>/conflicts.json`` maps every id of the suite to the ids it must not be
combined with: ``{"<id>": ["<other id>", ...], ...}``. The file may be one-sided (A lists B, B
does not list A: IFEvalG's reference table is), so :func:`conflict_map` symmetrises it and adds
every id to its own set (one id never appears twice in a sample). Nothing that scores reads these
files; they exist so ``ifharness generate`` never composes a prompt no answer can follow.

A suite whose ``conflicts.json`` is a reference's own table, kept as published (IFEvalG's
``INSTRUCTION_CONFLICTS``), lists the contradicting pairs that table misses in
``conflicts_extra.json`` (same shape, only the ids it adds to); :func:`conflict_map` merges
it, :func:`raw_conflicts` does not. IFEvalG's extras (square brackets or bigram wrapping vs
any rule on the first or last word, hyphen-joined sentences vs paragraphs and bullets, unique
words vs any repetition, end phrase vs a ban on ``.``/``!``, …) were each checked against the
checkers' rules in ``shared/specs/ifevalg.md`` §4.

A suite that re-registers another suite's checkers (IFEvalG re-registers IFEval's 25) also gets
that suite's conflicts between those shared ids: a pair of checkers that contradict each other
contradict wherever they are registered. :func:`raw_conflicts` is the file alone.

What IFEval's map adds to lm-eval's (= IFEvalG's entries restricted to the 25 ids), and why:

* ``detectable_format:multiple_sections`` with ``change_case:english_capital`` and with
  ``change_case:english_lowercase``: the section splitter is matched case-sensitively and the
  generator draws it title-cased (``Section``, ``Part``, ``Chapter``), which neither an
  all-capitals nor an all-lowercase answer can contain.
* ``combination:repeat_prompt`` with ``punctuation:no_comma``: the answer must start with the
  task text word for word, and a task text may contain a comma.
* ``language:response_language`` with ``keywords:letter_frequency`` (a Latin letter cannot be
  counted in a Cyrillic answer) and with ``length_constraints:nth_paragraph_first_word`` (the
  first word is an English word; the answer must be in another language).

Pairs that contradict only for some kwargs are kept apart by the draws instead of the map, so the
pair stays available: words of one sample are distinct and never words of its task
(``verifiers/draws.py``), so ``keywords:existence`` never requires a word ``forbidden_words``
forbids; end phrases contain no comma and none of the drawn words; letter counts are "at least"
of frequent letters; the length ranges of words, sentences and paragraphs are chosen so that any
two of them can hold at once (at least ~10 words a sentence either way). Pairs considered and
left compatible because the checkers allow both: ``startend:quotation`` with
``startend:end_checker`` (the end check strips the quotes), case with ``postscript`` (the marker
is matched lower-cased), case with keywords (matched ignoring case), ``quotation`` with
``nth_paragraph_first_word`` (leading quotes are stripped from the first word).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

from .registry import load_all

Table = Mapping[str, frozenset[str]]
FILE = "conflicts.json"
EXTRA = "conflicts_extra.json"  # pairs a reference table (kept as published) misses


class ConflictMapError(LookupError):
    """A suite without a readable ``conflicts.json``, or one that does not fit its registry."""


def _path(suite: str) -> str:
    return f"verifiers/{suite}/{FILE}"


def _package(suite: str) -> str:
    """Where the suite's ``conflicts.json`` lives: its package under ``verifiers/``, or, for a
    suite from an ``ifharness.suites`` entry point, the package of its constraints' module."""
    own = f"{__package__}.{suite}"
    if importlib.util.find_spec(own) is not None:
        return own
    for c in load_all():
        if c.suite == suite:
            module = sys.modules.get(c.func.__module__)
            return (module.__package__ if module else None) or c.func.__module__
    return own


@functools.cache
def raw_conflicts(suite: str) -> Table:
    """The suite's ``conflicts.json`` as written: id -> the ids it lists."""
    try:
        text = resources.files(_package(suite)).joinpath(FILE).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise ConflictMapError(
            f"suite {suite!r} has no conflict map ({_path(suite)}); write one mapping every id "
            'of the suite to the ids it must not share a prompt with ({"id": ["other", ...]}) '
            "before generating from it"
        ) from e
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConflictMapError(f"{_path(suite)}: not valid JSON: {e}") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
    ):
        raise ConflictMapError(f"{_path(suite)}: expected an object of id -> list of ids")
    return MappingProxyType({k: frozenset(v) for k, v in data.items()})


def _extra(suite: str) -> Table:
    """The suite's ``conflicts_extra.json``, or nothing when it has none."""
    try:
        text = resources.files(_package(suite)).joinpath(EXTRA).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return MappingProxyType({})
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConflictMapError(f"verifiers/{suite}/{EXTRA}: not valid JSON: {e}") from None
    return MappingProxyType({k: frozenset(v) for k, v in data.items()})


def symmetrise(raw: Mapping[str, frozenset[str]] | Mapping[str, set[str]]) -> Table:
    """If A lists B, B gets A; every id gets itself."""
    table: dict[str, set[str]] = {a: set(listed) | {a} for a, listed in raw.items()}
    for a, listed in raw.items():
        for b in listed:
            table.setdefault(b, {b}).add(a)
    return MappingProxyType({k: frozenset(v) for k, v in table.items()})


@functools.cache
def conflict_map(suite: str, inherit: bool = True) -> Table:
    """Symmetrised conflicts of ``suite``; with ``inherit``, plus those of shared checkers.

    Raises :class:`ConflictMapError` for a suite without ``conflicts.json``, or whose file
    names an id the suite does not define, or leaves one of its ids out.
    """
    raw = {k: set(v) for k, v in raw_conflicts(suite).items()}
    for k, v in _extra(suite).items():
        raw.setdefault(k, set()).update(v)
    table = {k: set(v) for k, v in symmetrise(raw).items()}
    registry = load_all()
    mine = {c.id: c for c in registry if c.suite == suite}
    if mine:
        unknown = sorted(set(table) - set(mine))
        missing = sorted(set(mine) - set(table))
        if unknown or missing:
            raise ConflictMapError(
                f"{_path(suite)} does not match suite {suite!r}: "
                + "; ".join(
                    part
                    for part in (
                        f"ids the suite does not define: {', '.join(unknown)}" if unknown else "",
                        f"ids missing (add each, with [] if it conflicts with none): "
                        f"{', '.join(missing)}"
                        if missing
                        else "",
                    )
                    if part
                )
            )
    if inherit:
        for other in sorted({c.suite for c in registry} - {suite}):
            shared = {
                cid
                for cid, c in mine.items()
                if (other, cid) in registry
                and registry[other, cid].func is c.func
                and registry[other, cid].prepare is c.prepare
            }
            if not shared:
                continue
            try:
                theirs = conflict_map(other, inherit=False)
            except ConflictMapError:
                continue
            for a in shared:
                table[a] |= theirs.get(a, frozenset()) & shared
    return MappingProxyType({k: frozenset(v) for k, v in table.items()})


def conflicts(suite: str, a: str, b: str) -> bool:
    """Whether ids ``a`` and ``b`` of ``suite`` must not share a prompt (``a == b`` included)."""
    table = conflict_map(suite)
    for cid in (a, b):
        if cid not in table:
            raise KeyError(f"{cid!r} is not an id of {_path(suite)}")
    return b in table[a]
