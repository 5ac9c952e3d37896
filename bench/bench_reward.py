"""Reward throughput: ``reward_batch`` on a warm pool versus what trainers run today.

All in one process, on the 540 published GPT-4 answers (shared/data/ifeval), each with its
own constraints (the RL label string ``str([{"instruction_id", "kwargs"}])``), strict mode:

* ``reward_batch(workers=2)`` on a warm :class:`~ifharness.reward.RewardPool` (the headline),
  with the workers' per-sentence caches kept between passes and, apart, emptied before each;
* ``reward_batch`` in this process (``workers=0``) and on one worker;
* lm-eval's ifeval scorer (``lm_eval.tasks.ifeval.utils.process_results``; it always computes
  loose too, which is all it offers);
* a per-call loop in the trainers' style (open-instruct, verl recipes): for each answer and
  each constraint, instantiate lm-eval's instruction class from its registry,
  ``build_description(**kwargs)``, ``check_following(answer)``.

Each is warmed once, then timed over ``BENCH_REPEATS`` (default 5) passes; the best pass is
reported as answers/s. A second table gives, for each hostile 1 MB answer, the slowest IFEval
constraint in strict mode through ``reward`` (the budget is 0.5 s).

Timings on a shared machine are noisy: compare the rows of one run, not runs.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "ifeval"
REPEATS = max(1, int(os.environ.get("BENCH_REPEATS", "5")))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))


def best_of(fn, before=None) -> tuple[float, object]:
    result = fn()  # warm-up
    best = float("inf")
    for _ in range(REPEATS):
        if before is not None:
            before()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> int:
    if not (DATA / "gpt4_responses.jsonl").is_file():
        print(f"skipped: reference data not found in {DATA}")
        return 0
    nltk_cache = metadata.distribution("llama-index-core").locate_file(
        "llama_index/core/_static/nltk_cache"
    )
    os.environ["NLTK_DATA"] = str(nltk_cache)
    os.environ.setdefault("LOCAL_RANK", "1")  # lm-eval then never tries to download

    import langdetect
    from lm_eval.tasks.ifeval import instructions_registry
    from lm_eval.tasks.ifeval import utils as lm

    from ifharness.reward import RewardPool, reward, reward_batch
    from ifharness.verifiers import get, nlp

    prompts = {r["key"]: r for r in map(json.loads, (DATA / "input_data.jsonl").open())}
    answers = [json.loads(line) for line in (DATA / "gpt4_responses.jsonl").open()]
    texts = [a["response"] for a in answers]
    docs = [prompts[a["key"]] for a in answers]
    labels = [
        str([{"instruction_id": d["instruction_id_list"], "kwargs": d["kwargs"]}]) for d in docs
    ]
    n = len(texts)

    def lmeval():
        out = []
        for doc, response in zip(docs, texts):
            random.seed(0)
            langdetect.DetectorFactory.seed = 0
            doc = dict(doc, kwargs=[{k: v for k, v in kw.items() if v} for kw in doc["kwargs"]])
            out.append(lm.process_results(doc, [response]))
        return out

    def trainer_style():
        scores = []
        for doc, response in zip(docs, texts):
            ok = 0
            for cid, kw in zip(doc["instruction_id_list"], doc["kwargs"]):
                inst = instructions_registry.INSTRUCTION_DICT[cid](cid)
                inst.build_description(**{k: v for k, v in kw.items() if v is not None})
                args = inst.get_instruction_args()
                if args and "prompt" in args:
                    inst.build_description(prompt=doc["prompt"])
                ok += bool(response.strip() and inst.check_following(response))
            scores.append(ok / len(doc["instruction_id_list"]))
        return scores

    rows = []
    t, inline = best_of(
        lambda: reward_batch(texts, labels, suite="ifeval", workers=0), nlp.clear_caches
    )
    rows.append(("reward_batch(workers=0), in process", t))
    with RewardPool(workers=1) as one:
        one.wait_ready()
        t, _ = best_of(lambda: one.reward_batch(texts, labels, suite="ifeval"), one.clear_caches)
        rows.append(("reward_batch(workers=1)", t))
    with RewardPool(workers=WORKERS) as pool:
        pool.wait_ready()
        t_cold, out = best_of(
            lambda: pool.reward_batch(texts, labels, suite="ifeval"), pool.clear_caches
        )
        t_warm, out2 = best_of(lambda: pool.reward_batch(texts, labels, suite="ifeval"))
    headline = f"reward_batch(workers={WORKERS}), warm pool"
    rows.append((f"{headline}, caches emptied per pass", t_cold))
    rows.append((f"{headline}, caches kept", t_warm))
    same = out == inline and out2 == inline
    t_lm, _ = best_of(lmeval)
    rows.append((f"lm-eval {metadata.version('lm_eval')} process_results (strict+loose)", t_lm))
    t_tr, tr_scores = best_of(trainer_style)
    rows.append(("per-call instantiate-and-check loop (lm-eval classes)", t_tr))

    print(f"strict reward of {n} GPT-4 answers, their own constraints; best of {REPEATS} passes")
    print(f"{'scorer':66s} {'answers/s':>10s} {'ms/pass':>9s}")
    for name, secs in rows:
        print(f"{name:66s} {n / secs:10,.0f} {secs * 1000:9.1f}")
    agree = sum(abs(a - r.score) < 1e-9 for a, r in zip(tr_scores, inline))
    print(
        f"pool results equal in-process results: {same}; trainer-style loop agrees on "
        f"{agree}/{n} scores (lm-eval leaves 1122/1129's letter random)"
    )

    # hostile answers: the slowest IFEval constraint of each, strict, through reward()
    sys.path.insert(0, str(ROOT / "tests"))
    from tests.test_reward_budget import HOSTILE

    first: dict[str, dict] = {}
    for d in prompts.values():
        for cid, kw in zip(d["instruction_id_list"], d["kwargs"]):
            first.setdefault(cid, kw)
    nlp.word_tokenize("Warm up. Now!")
    print("\nhostile answers, strict, every IFEval constraint through reward() (budget 0.5 s)")
    print(f"{'answer':12s} {'chars':>9s} {'slowest constraint':45s} {'s':>7s}")
    for name, text in HOSTILE.items():
        worst, worst_id = 0.0, ""
        for cid, kw in sorted(first.items()):
            get(cid, "ifeval")
            t0 = time.perf_counter()
            reward(text, [{"id": cid, "kwargs": kw}], suite="ifeval", max_chars=None)
            dt = time.perf_counter() - t0
            if dt > worst:
                worst, worst_id = dt, cid
        print(f"{name:12s} {len(text):9,d} {worst_id:45s} {worst:7.3f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
