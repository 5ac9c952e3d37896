"""The density family: one long-form prompt carrying N keyword-inclusion instructions.

IFScale (Jaroslawicz et al., 2025; ``shared/specs/suites.md`` §4) measures how instruction
following falls as the number of instructions in one prompt grows: a business report that must
hold N given words, N up to 500. :func:`generate_density` writes such a set as an ordinary task
(suite ``ifscale``, constraint ``keywords:include_exact``): one sample per (level N, seed s),
the base task ``bt-report`` plus N numbered instructions whose order is the keyword's position
(the primacy curve of ``ifharness.density`` reads it from there). Levels, seeds and the master
seed are arguments; the same arguments give byte-identical files.

**The vocabulary, and why this one.** IFScale's own 500 terms are not used: its repository
has no licence file and the paper's licence is unclear. Keywords come from ``wordfreq`` 3.1.1
(PyPI; code Apache-2.0, frequency data CC BY-SA 4.0; a 57 MB wheel), the same Zipf scale
IFScale filtered its terms on, so a word's commonness is a documented number. The other
candidates, weighed on their registry entries: ``english-words`` 2.0.2 (MIT, 8 MB) has no
frequencies, so no control over how common a keyword is; ``wikiwords`` (2012) and
``pywordfreq`` count Wikipedia, whose text is CC BY-SA as well, so they save no licence
obligation, and are less maintained; ``wordstats`` counts subtitle corpora, whose licences are
less clear than wordfreq's. wordfreq's size is paid only where a set is generated.

Because wordfreq's list is built from web text it holds names, brands and slang ("priyanka",
"breitbart"); a candidate must therefore also be a lower-case entry of ``web2`` (Webster's
Second International, 1934, public domain, as packaged by ``english-words`` 2.0.2, MIT), where
proper nouns are capitalised. The filter: lower-case
ASCII letters only, at least 4 letters, Zipf frequency in [2.5, 4.5] (common enough to write
naturally, rare enough not to appear by chance), not an NLTK English stop word (the list
``ifharness.verifiers.ifbench`` already ships), not on a short list of sexual, offensive or
violent words (a business report should not be asked to hold them). That leaves about 20,700
words; a seeded, substring-free pool of 500 (no keyword contains another, so including one can
never include another by accident) is drawn from them, then each (N, s) takes a seeded sample
of N from the pool, in sampled order. Words of the prompt's own text are left out of the pool
(echoing the task would include them for free). Levels above the pool size are refused.

Both packages are needed only to *generate* a set (``pip install 'ifharness[generate]'``),
never to run or score one: a generated task carries its keywords. Attribution: the keyword
lists of a generated task derive from wordfreq's data (Robyn Speer, CC BY-SA 4.0,
https://github.com/rspeer/wordfreq), which the task's description says; treat a published
generated set as share-alike. The pinned versions are recorded as ``generated.vocabulary``
(and the dictionary in ``generated.args``), and a different installed version is refused, so
regenerating from the record reproduces the set exactly. A change to the filter, the block
list, the pool size or the keyword note changes every set: bump ``GENERATOR_VERSION``.
"""

from __future__ import annotations

import importlib
import random
import re
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ifharness.errors import IfharnessError

FAMILY = "density"
SUITE = "ifscale"
CONSTRAINT_ID = "keywords:include_exact"
BASE_TASK_ID = "bt-report"
DEFAULT_LEVELS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
POOL_SIZE = 500
ZIPF_RANGE = (2.5, 4.5)
MIN_LETTERS = 4
SCANNED = 80_000  # wordfreq's most frequent English words read (every Zipf >= 2.5 is among them)
MAX_TOKENS = 16_384  # a report holding 500 words runs to thousands of tokens

VOCABULARY = {"package": "wordfreq", "version": "3.1.1"}
DICTIONARY = {"package": "english-words", "version": "2.0.2"}
INSTALL = (
    "pip install 'ifharness[generate]' (that is: pip install wordfreq==3.1.1 english-words==2.0.2)"
)

# Words a business report should not be asked to include. Stems block every word that starts
# with them; the whole words are those whose stem would also block harmless words.
_BLOCKED_STEMS = (
    "bastard bitch boob breast brothel cadaver copulat corpse cunt damn ejacul erotic excrement "
    "fecal feces fetish fuck genital genocid horny incest insemin kill kinky masturb massacre "
    "molest murder naked nigg nipple nude orgasm pedophil penis piss porn prostitut pussy rape "
    "rapist rectum retard scrot semen sex slaughter slut sperm suicid terror testic threesome "
    "tortur urin vagin vomit vulva whor behead"
).split()
_BLOCKED_WORDS = frozenset(
    "anal anus arse booze butt chink cock cocky crap dick dyke fag hell heroin homosexual "
    "homosexuality lust lustful lusty meth nazi panties pimp pimping puke spic stripper "
    "drugstore cocaine".split()
)

# Rendering-independent text after the base task: how the keywords are to be used. Written for
# ifharness; IFScale's preamble is not reused.
_KEYWORD_NOTE = (
    "Work every word listed below into the report, each at least once and spelled exactly as "
    "given. A changed form does not count: for 'customer', neither 'customers' nor "
    "'customer-driven' nor \"customer's\" is the word. Use the words in ordinary sentences of "
    "the report; do not list them or repeat these instructions."
)


class VocabularyUnavailable(IfharnessError):
    """The word-frequency packages needed to generate a density set are not installed."""


def _require(dist: dict[str, str], module: str) -> Any:
    try:
        mod = importlib.import_module(module)
        installed = metadata.version(dist["package"])
    except (ImportError, metadata.PackageNotFoundError):
        raise VocabularyUnavailable(
            f"`ifharness generate density` draws its keywords from {dist['package']} "
            f"{dist['version']}, which is not installed; install it with: {INSTALL}"
        ) from None
    if installed != dist["version"]:
        raise VocabularyUnavailable(
            f"{dist['package']} {installed} is installed, but density sets are drawn from "
            f"{dist['package']} {dist['version']} so that a set regenerates exactly from its "
            f"record; install it with: {INSTALL}"
        )
    return mod


def _blocked(word: str) -> bool:
    return word in _BLOCKED_WORDS or word.startswith(tuple(_BLOCKED_STEMS))


def candidates() -> list[str]:
    """Every word the filter of the module docstring admits, most frequent first."""
    wordfreq = _require(VOCABULARY, "wordfreq")
    english_words = _require(DICTIONARY, "english_words")
    from ifharness.verifiers.ifbench._util import english_stopwords

    web2 = {w for w in english_words.get_english_words_set(["web2"], lower=False) if w.islower()}
    stop = english_stopwords()
    lo, hi = ZIPF_RANGE
    out = []
    for w in wordfreq.top_n_list("en", SCANNED):
        if (
            len(w) >= MIN_LETTERS
            and re.fullmatch("[a-z]+", w)
            and w in web2
            and w not in stop
            and not _blocked(w)
            and lo <= wordfreq.zipf_frequency(w, "en") <= hi
        ):
            out.append(w)
    return out


def substring_free_pool(words: Sequence[str], size: int, seed: int) -> list[str]:
    """``size`` words of ``words`` in a seeded order, none a substring of another.

    Words are taken in a seeded shuffle; one that contains, or is contained in, a word already
    taken is skipped. Any subset of the pool is then substring-free too."""
    order = random.Random(f"ifharness-density-pool:{seed}").sample(list(words), len(words))
    pool: list[str] = []
    for w in order:
        if any(w in p or p in w for p in pool):
            continue
        pool.append(w)
        if len(pool) == size:
            return pool
    raise IfharnessError(
        f"only {len(pool)} substring-free keywords could be drawn; lower the largest level"
    )


def keywords_for(pool: Sequence[str], level: int, seed: int, replicate: int) -> list[str]:
    """The ``level`` keywords of sample (level, replicate), in instruction order."""
    return random.Random(f"ifharness-density:{seed}:{level}:{replicate}").sample(list(pool), level)


def _ints(value: Sequence[int] | str | int, what: str) -> list[int]:
    """``levels``/``seeds`` as given by the CLI (``"1,2,5"``) or by code (a list, an int)."""
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        try:
            items = [int(x) for x in value.split(",") if x.strip()]
        except ValueError:
            raise IfharnessError(f"--{what} {value!r}: give integers separated by commas") from None
    else:
        items = [int(x) for x in value]
    if not items:
        raise IfharnessError(f"--{what}: give at least one value")
    if len(set(items)) != len(items):
        raise IfharnessError(f"--{what} {items}: a value is repeated")
    return items


def base_task() -> tuple[str, str]:
    """``(id, prompt)`` of the report base task (``bt-report`` in ``tasks/base_tasks.jsonl``)."""
    from .compose import base_task as find

    return BASE_TASK_ID, find(BASE_TASK_ID).task


def _prose(task_text: str, lines: Sequence[str]) -> str:
    """The prose rendering with numbered instructions: IFScale numbers its keyword lines, and a
    number makes each instruction's position (what the primacy curve is about) explicit."""
    return task_text + "\n\n" + "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


def _render(task_text: str, keywords: Sequence[str], rendering: str) -> str:
    from ifharness.verifiers import get

    from .render import render

    c = get(CONSTRAINT_ID, SUITE)
    instructions = [(c, {"keyword": k}) for k in keywords]
    if rendering == "prose":
        return _prose(task_text.strip(), [c.render(kw) for _, kw in instructions])
    return render(task_text, instructions, rendering)


def _description(levels: Sequence[int], seeds: Sequence[int], rendering: str) -> str:
    return (
        f"IFScale-style density sweep generated by ifharness: one business report per (level, "
        f"seed) carrying N keyword-inclusion instructions, N in {', '.join(map(str, levels))}, "
        f"seeds {', '.join(map(str, seeds))}; {rendering} rendering. Scored with IFScale's "
        "published inclusion rule (\\b<kw>\\b on the lower-cased answer; profile "
        "ifscale-token for its runner's token rule); metrics.json holds the per-level "
        "accuracy, primacy curve and error taxonomy under `density`. Keywords derive from "
        "wordfreq 3.1.1's English data (Robyn Speer, CC BY-SA 4.0, "
        "https://github.com/rspeer/wordfreq) filtered by web2 (public domain, via "
        "english-words 2.0.2); the lists are share-alike."
    )


def generate_density(
    levels: Sequence[int] | str = DEFAULT_LEVELS,
    seeds: Sequence[int] | str | int = (0,),
    seed: int = 0,
    rendering: str = "prose",
    out: str | Path = ".",
    name: str = "density",
) -> list[Path]:
    """Write the density set as task(s) under ``out``; returns the task YAML path(s).

    ``levels``: the N values; ``seeds``: replicate indices s (one sample per (N, s));
    ``seed``: the master seed of the keyword pool and of every (N, s) draw; ``rendering``:
    ``prose``, ``pseudocode``, ``json`` or ``all`` (one task per rendering, named
    ``<name>-<rendering>``, sharing one ``set_id``).
    """
    from . import GENERATOR_VERSION
    from .io import set_id as set_id_of
    from .io import write_task
    from .render import RENDERINGS

    level_list = _ints(levels, "levels")
    seed_list = _ints(seeds, "seeds")
    if min(level_list) < 1:
        raise IfharnessError(f"--levels {level_list}: every level must be at least 1")
    if max(level_list) > POOL_SIZE:
        raise IfharnessError(
            f"--levels {level_list}: at most {POOL_SIZE} keywords per prompt (the pool size)"
        )
    if rendering == "all":
        renderings = list(RENDERINGS)
    elif rendering in RENDERINGS:
        renderings = [rendering]
    else:
        raise IfharnessError(
            f"--rendering {rendering!r}: choose one of {', '.join((*RENDERINGS, 'all'))}"
        )
    base_id, base_text = base_task()
    task_text = base_text.strip() + "\n\n" + _KEYWORD_NOTE
    # a word the prompt's own text holds would be "included" by echoing the task
    task_words = set(re.findall("[a-z]+", task_text.lower()))
    pool = substring_free_pool([w for w in candidates() if w not in task_words], POOL_SIZE, seed)
    width = len(str(max(level_list)))
    plan = [(n, s, keywords_for(pool, n, seed, s)) for n in level_list for s in seed_list]
    core = [
        {
            "key": f"n{n:0{width}d}-s{s}",
            "base_task": base_id,
            "level": n,
            "instruction_id_list": [CONSTRAINT_ID] * n,
            "kwargs": [{"keyword": k} for k in kws],
        }
        for n, s, kws in plan
    ]
    set_id = set_id_of(core)
    args = {
        "levels": level_list,
        "seeds": seed_list,
        "pool_size": POOL_SIZE,
        "zipf_range": list(ZIPF_RANGE),
        "min_letters": MIN_LETTERS,
        "dictionary": dict(DICTIONARY),
        "base_task": base_id,
    }
    paths = []
    for r in renderings:
        task_name = name if len(renderings) == 1 else f"{name}-{r}"
        rows = [
            {
                **row,
                "prompt": _render(task_text, kws, r),
                "rendering": r,
                "generator": {"version": GENERATOR_VERSION, "seed": seed, "set_id": set_id},
            }
            for row, (_, _, kws) in zip(core, plan)
        ]
        spec = {
            "name": task_name,
            "description": _description(level_list, seed_list, r),
            "suite": SUITE,
            "profile": "reference",
            "source": {"file": f"{task_name}.jsonl"},
            "generation": {"max_tokens": MAX_TOKENS, "temperature": 0.0},
            "metric": "inst_level_strict_acc",
            "generated": {
                "generator": "ifharness",
                "version": GENERATOR_VERSION,
                "family": FAMILY,
                "seed": seed,
                "rendering": r,
                "set_id": set_id,
                "args": args,
                "vocabulary": dict(VOCABULARY),
            },
        }
        paths.append(write_task(out, task_name, rows, spec))
    return paths
