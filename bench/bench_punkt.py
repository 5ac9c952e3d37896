"""Time NLTK's Punkt English against ``verifiers.punkt_fast`` on the GPT-4 IFEval answers.

    python bench/bench_punkt.py [--repeat N]

Both run in this process on the same 540 responses; each figure is the best of N passes
(passes alternate between the two, so machine noise hits both alike). "cold" clears
punkt_fast's per-token cache before every pass; "warm" keeps it, as a scoring run does.
Then NLTK's Treebank word split of every sentence against ``nlp``'s (without its cache).
Outputs are checked to be identical before anything is timed. Times are CPU time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ifeval" / "gpt4_responses.jsonl"


def _one_pass(fn, texts: list[str], before=None) -> float:
    """CPU seconds for one pass of ``fn`` over ``texts`` (less noisy than wall time here)."""
    if before is not None:
        before()
    start = time.process_time()
    for text in texts:
        fn(text)
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2

    from ifharness.verifiers import nlp, punkt_fast

    texts = [
        json.loads(line)["response"] for line in args.data.read_text().splitlines() if line.strip()
    ]
    reference = nlp.punkt_english().tokenize
    ours = punkt_fast.sentences
    mismatches = sum(reference(t) != ours(t) for t in texts)
    if mismatches:
        print(f"{mismatches} responses differ from NLTK: not timing", file=sys.stderr)
        return 1

    times: dict[str, list[float]] = {"nltk": [], "cold": [], "warm": []}
    for _ in range(args.repeat):
        times["nltk"].append(_one_pass(reference, texts))
        times["cold"].append(_one_pass(ours, texts, before=punkt_fast._SOLO.clear))
        times["warm"].append(_one_pass(ours, texts))
    best = {k: min(v) for k, v in times.items()}
    sentences = sum(len(ours(t)) for t in texts)
    print(f"{len(texts)} responses, {sum(map(len, texts))} characters, {sentences} sentences")
    for name, secs in best.items():
        print(f"  {name:5s} {secs * 1e3:8.1f} ms  ({secs / len(texts) * 1e6:6.1f} us/response)")
    print(
        f"speed-up: cold {best['nltk'] / best['cold']:.1f}x, "
        f"warm {best['nltk'] / best['warm']:.1f}x"
    )

    # word_tokenize's second half: NLTK's Treebank split of every sentence, uncached.
    from nltk.tokenize.destructive import NLTKWordTokenizer

    sents = [s for t in texts for s in ours(t)]
    treebank = NLTKWordTokenizer().tokenize
    skipping = nlp._treebank_tokens.__wrapped__
    if any(list(skipping(s)) != treebank(s) for s in sents):
        print("Treebank tokens differ from NLTK: not timing", file=sys.stderr)
        return 1
    tb: dict[str, list[float]] = {"nltk": [], "ours": []}
    for _ in range(max(1, args.repeat // 3)):
        tb["nltk"].append(_one_pass(treebank, sents))
        tb["ours"].append(_one_pass(skipping, sents))
    nltk_s, ours_s = min(tb["nltk"]), min(tb["ours"])
    print(
        f"Treebank, {len(sents)} sentences: nltk {nltk_s * 1e3:.1f} ms, ours {ours_s * 1e3:.1f} "
        f"ms (uncached): {nltk_s / ours_s:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
