"""The bundled ``quick`` task (`tasks/quick.yaml` + `tasks/quick.jsonl`).

It is the one-minute diagnostic swept across many models (``--models @FILE --task quick``),
so every prompt must be answerable as asked: one answer per prompt, written here, passes
every check of its prompt, and an answer that ignores the instruction fails it (so the
check is not vacuous). Each row names one failure family, and the family reaches
``Sample.meta`` and the run folder's ``samples.jsonl``: the HTML leaderboard's heat map
groups by it.
"""

from __future__ import annotations

import pytest

import ifharness
from ifharness.scoring import judge

FAMILIES = (
    "format",
    "length",
    "case",
    "start_end",
    "forbidden_words",
    "counting",
    "multi_step",
    "json",
    "language",
    "repetition",
    "placeholders",
    "sections",
    "bullets",
    "postscript",
    "quotation",
    "highlights",
    "title",
    "no_commas",
    "two_responses",
    "paragraphs",
)

#: One answer per family that follows its prompt to the letter.
FOLLOWING = {
    "format": "My answer is yes.",
    "length": "A lighthouse shines a bright light from the coast so ships can see rocks and "
    "find their way safely at night.",
    "case": "A HEAVY SNOWSTORM WILL REACH THE CITY TONIGHT. STAY INDOORS AND KEEP WARM UNTIL "
    "THE ROADS ARE CLEARED.",
    "start_end": "Water them only when the soil is dry. Give them bright indirect light. Wipe "
    "the dust off their leaves. Happy gardening!",
    "forbidden_words": "The beach is warm and bright. Children build castles near the waves. "
    "Gulls circle above the shore.",
    "counting": "Our cat is missing. The cat is grey with a quiet purr. If you see the cat, "
    "please ring quickly, it is quite urgent.",
    "multi_step": "Boil fresh water in a kettle.\n\nPut a tea bag in a cup and pour the hot "
    "water over it.\n\nFinally, wait three minutes, remove the bag and add milk if you like.",
    "json": '```json\n{"fruits": [{"name": "banana", "colour": "yellow"}, '
    '{"name": "cherry", "colour": "red"}]}\n```',
    "language": "Ma saison préférée est l'automne. Les arbres deviennent rouges et dorés, et "
    "l'air est frais le matin.",
    "repetition": "Name one reason people enjoy reading novels. They let you live many lives "
    "through the characters.",
    "placeholders": "You are invited to my birthday party on [date] at [address]. Bring your "
    "smile!",
    "sections": "Section 1\nDrive up on Saturday morning and hike to the lake.\nSection 2\n"
    "Spend Sunday at the hot springs and drive home.",
    "bullets": "* It is good for your health.\n* It keeps your skin clear.\n* It helps you think.",
    "postscript": "Dear Ms Lee, thank you for a wonderful year of lessons.\n\nP.S. I still use "
    "the reading tips you gave me.",
    "quotation": '"Bicycles take little space and make no noise, so streets become calmer."',
    "highlights": "A good breakfast has *fresh fruit* and *whole grains* to keep you going.",
    "title": "<<Falling Gold>>\nRed leaves drift down\nOn a cold wind\nThey cover the town\n"
    "Autumn begins",
    "no_commas": "Trains roll in every minute. People rush past the ticket machines. A voice "
    "calls out the next departure.",
    "two_responses": "Golden Crust Bakery\n******\nThe Morning Loaf",
    "paragraphs": "Dogs are loyal companions who make people feel loved.\n***\nThey also get "
    "their owners outside for walks every day.",
}

#: One answer per family that breaks its prompt's (first) instruction.
BREAKING = {
    "format": "Yes, the Pacific is the largest ocean.",
    "length": " ".join(["word"] * 60),
    "case": "A heavy snowstorm will reach the city tonight.",
    "start_end": "Water them when dry. Happy gardening! Good luck.",
    "forbidden_words": "The sun is out and the water is warm.",
    "counting": "My pet is missing, please call.",
    "multi_step": "Boil water.\n\nAdd the tea.\n\nThen drink it.",
    "json": "banana: yellow, cherry: red",
    "language": "My favourite season is autumn because the trees turn red and gold.",
    "repetition": "People enjoy novels because they tell stories.",
    "placeholders": "You are invited to my party on Friday.",
    "sections": "Drive up on Saturday and come back on Sunday.",
    "bullets": "* It is good for your health.\n* It keeps you well.",
    "postscript": "Dear Ms Lee, thank you for a wonderful year.",
    "quotation": "Bicycles take little space.",
    "highlights": "A good breakfast has fruit and grains.",
    "title": "Red leaves drift down\nOn a cold wind",
    "no_commas": "Trains roll in, people rush, and a voice calls out.",
    "two_responses": "Golden Crust Bakery",
    "paragraphs": "Dogs are loyal companions who make people feel loved.",
}


@pytest.fixture(scope="module")
def task():
    return ifharness.load_task("quick")


def _by_family(task) -> dict:
    return {s.meta["family"]: s for s in task.samples}


def test_twenty_prompts_one_per_family_on_sample_meta(task):
    assert task.spec.suite == "ifeval"
    assert len(task.samples) == 20
    families = [s.meta.get("family") for s in task.samples]
    assert sorted(families) == sorted(FAMILIES)  # 20 distinct families, all named
    for s in task.samples:
        assert 1 <= len(s.instructions) <= 3, s.key
        assert [m.role for m in s.messages] == ["user"], s.key


def test_short_generation_defaults_for_a_one_minute_sweep(task):
    assert task.spec.generation.max_tokens <= 256
    assert task.spec.generation.temperature == 0.0


@pytest.mark.parametrize("family", FAMILIES)
def test_each_prompt_is_satisfiable_and_its_check_is_not_vacuous(task, family):
    sample = _by_family(task)[family]
    bound = [(i.id, i.kwargs) for i in sample.instructions]
    follows = judge(bound, FOLLOWING[family], task.profile, task.spec.suite)
    assert follows["strict"] == [True] * len(bound), (family, bound, follows)
    breaks = judge(bound, BREAKING[family], task.profile, task.spec.suite)
    assert breaks["strict"][0] is False, (family, bound, breaks)


def test_family_reaches_the_run_folder_samples(task):
    from ifharness.results import sample_rows

    rows = sample_rows(task)
    assert {r["meta"]["family"] for r in rows} == set(FAMILIES)
