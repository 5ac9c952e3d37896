"""Our IFEval verdicts equal the reference scorer's, instruction by instruction."""

from __future__ import annotations

from tests.support.data import read_jsonl, shared


def test_verdicts_equal_reference_on_gpt4_answers(gpt4_result):
    reference = {r["key"]: r for r in read_jsonl(shared("ifeval/gpt4_reference_verdicts.jsonl"))}
    ours = {v["key"]: v for v in gpt4_result.verdicts}
    assert len(reference) == 540
    compared = 0
    differences = []
    for key, ref in reference.items():
        mine = ours[key]
        assert mine["instruction_id_list"] == ref["instruction_id_list"]
        for mode in ("strict", "loose"):
            for i, (a, b) in enumerate(zip(mine[mode], ref[mode])):
                compared += 1
                if a != b:
                    differences.append((key, i, mode, mine["instruction_id_list"][i], a, b))
    # 832 instructions x 2 modes. Keys 1122/1129 (letter "#"/"!") are random in the
    # reference and not golden; our seeded draw happens to agree with these verdicts too.
    assert compared == 2 * 832
    assert differences == []


def test_metrics_reproduce_published_figures(gpt4_result):
    m = gpt4_result.metrics
    # 541 prompts, key 2785 has no published answer (shared/data/README.md): scored as failed.
    assert m["n_prompts"] == 541 and m["n_instructions"] == 834
    assert m["missing"] == [2785] and m["missing_responses"] == 1
    assert (m["prompts_strict_followed"], m["instructions_strict_followed"]) == (417, 697)
    assert (m["prompts_loose_followed"], m["instructions_loose_followed"]) == (431, 713)
    # The same verdicts over the 540 answered prompts: the figures the data README gives.
    assert round(100 * 417 / 540, 2) == 77.22 and round(100 * 697 / 832, 2) == 83.77
    assert round(100 * 431 / 540, 2) == 79.81 and round(100 * 713 / 832, 2) == 85.70
    assert round(100 * m["prompt_level_strict_acc"], 2) == 77.08


def test_per_constraint_counts(gpt4_result):
    per = gpt4_result.metrics["per_constraint"]
    assert len(per) == 25
    assert sum(c["n"] for c in per.values()) == 834
    # Reference figures for the published-matching run (spec §10), ids not touched by 2785
    # or by the random letters.
    assert (
        per["punctuation:no_comma"]["strict_followed"],
        per["punctuation:no_comma"]["loose_followed"],
    ) == (44, 48)
    assert (per["startend:quotation"]["strict_followed"], per["startend:quotation"]["n"]) == (
        41,
        41,
    )
    assert per["length_constraints:number_words"]["strict_followed"] == 37
    assert per["length_constraints:number_words"]["loose_followed"] == 39
    fam = gpt4_result.metrics["per_family"]
    assert sum(f["n"] for f in fam.values()) == 834
