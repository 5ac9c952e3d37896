"""IFBench checkers, one behaviour at a time: the quirks of shared/specs/ifbench.md §1 and the
2025/current differences behind profile ``ifbench-2025``. No shared data needed."""

from __future__ import annotations

import json

import pytest

import ifharness
from ifharness.scoring import judge
from ifharness.verifiers import KwargsError, Text, get, get_profile, load_all
from ifharness.verifiers.ifbench import _util
from ifharness.verifiers.registry import ReferenceCrash, ResourceUnavailable

CURRENT, OLD = "reference", "ifbench-2025"


def ok(cid: str, text: str, profile: str = CURRENT, **kwargs) -> bool:
    p = get_profile(profile)
    c = get(cid)
    return c(Text(text, p), **c.bind(kwargs, profile=p))


def both(cid: str, text: str, **kwargs) -> tuple[bool, bool]:
    return ok(cid, text, CURRENT, **kwargs), ok(cid, text, OLD, **kwargs)


def test_all_58_ids_registered_with_templates_that_render():
    ifbench = {cid: c for cid, c in load_all().items() if c.suite == "ifbench"}
    assert len(ifbench) == 58
    families = {cid.split(":")[0] for cid in ifbench}
    assert families == {"count", "ratio", "words", "sentence", "format", "custom", "repeat"}
    sample = {
        "N": 3,
        "small_n": 2,
        "min_words": 5,
        "max_words": 9,
        "percentage": 40,
        "reference_text": "ref",
        "keyword": "kw",
        "word": "kw",
        "n": 2,
        "m": 3,
        "options": "yes/no/maybe",
        "sep": "-",
        "prompt_to_repeat": "a b c d e",
        "n_start": 1,
        "n_end": 3,
        **{f"keyword{i}": f"k{i}" for i in range(1, 6)},
    }
    for c in ifbench.values():
        kwargs = {k: v for k, v in sample.items() if k in c.kwargs_model.model_fields}
        bound = c.bind(kwargs)
        assert c.render(bound) and c.render(bound, pseudo=True), c.id


def test_profile_2025_is_known_before_any_checker_loads():
    p = get_profile(OLD)
    assert p.has("ifbench-regex-sentences") and p.has("ifbench-repeat-span-words")
    assert not get_profile(CURRENT).flags


# --- count --------------------------------------------------------------------------------


def test_count_family():
    assert ok("count:word_count_range", "don't stop", min_words=3, max_words=3)  # \w+ runs
    assert ok("count:unique_word_count", "A a a! ... b", N=3)  # "...": the empty word counts
    assert not ok("count:unique_word_count", "A a a! b", N=3)
    assert ok("count:conjunctions", "and And and,", small_n=3)  # raw tokens: a known bug
    assert both("count:person_names", "Emmanuel met emma and Liam.", N=2) == (False, True)
    assert ok("count:person_names", "Emma, Liam and Ava-Mia.", N=4)
    assert ok("count:numbers", "Pi is 3.14, a town has 1,000 people, on 2024-05-01.", N=3)
    assert ok("count:words_japanese", "one 日本 three 中文 five", N=2)  # Chinese passes
    assert not ok("count:words_japanese", "one two three", N=2)
    assert ok("count:words_japanese", "one 42 three", N=2)  # digits are skipped
    assert ok("count:words_japanese", "short", N=5)  # vacuous
    assert ok("count:punctuation", "Really?! Yes. No, wait! Why? Because; see: this.")
    assert not ok("count:punctuation", "Really?! Yes. No, wait; see: this.")  # ?! is not ! and ?
    assert not ok("count:punctuation", "Yes. No, wait! Why? Because; see: this.")  # no interrobang
    assert ok(
        "count:keywords_multiple",
        "cat dogs dog bird birds birdie x x x x x y y y y y y y",
        keyword1="cat",
        keyword2="dog",
        keyword3="bird",
        keyword4="x",
        keyword5="y",
    )
    # Substrings count: "cat" inside "category".
    assert ok(
        "count:keywords_multiple",
        "category dog dog bird bird bird x x x x x zzzzzzz",
        keyword1="cat",
        keyword2="dog",
        keyword3="bird",
        keyword4="x",
        keyword5="z",
    )


def test_count_pronouns_current_and_2025_sets():
    text = "This is what everyone wants: she/her and they."
    # Current set: this, what, everyone, she, her, they = 6; 2025 set: she, her, they = 3.
    assert both("count:pronouns", text, N=6) == (True, False)
    assert both("count:pronouns", text, N=3) == (True, True)
    # 2025: delete-P turns "It's" into "its", a pronoun; now Treebank gives "it" + "'s".
    assert both("count:pronouns", "It's mine.", N=2) == (True, True)
    assert both("count:pronouns", "It's mine.", N=3) == (False, False)


# --- ratio --------------------------------------------------------------------------------


def test_stop_words():
    assert ok("ratio:stop_words", "don't", percentage=100)  # "don" and "t" are both stopwords
    assert not ok("ratio:stop_words", "don't", percentage=99)
    assert ok("ratio:stop_words", "The cat sat", percentage=34)  # 1 of 3
    assert not ok("ratio:stop_words", "The cat sat", percentage=33)
    assert not ok("ratio:stop_words", "?!", percentage=50)  # no words: fails
    with pytest.raises(ReferenceCrash):  # c94da02 divided by zero
        ok("ratio:stop_words", "?!", OLD, percentage=50)


def test_sentence_ratios():
    assert ok("ratio:sentence_type", "One. Two. Three?")
    assert not ok("ratio:sentence_type", 'One. "Two." Three?')  # a closing quote hides the "."
    assert ok("ratio:sentence_type", "No ending at all")  # 0 == 0
    assert ok("ratio:sentence_balance", "A. B? C!")
    assert not ok("ratio:sentence_balance", "A. B? C! D.")
    assert ok("ratio:sentence_words", "Abc def. Ghi jkl. Abc def.")  # reuse is never checked
    assert not ok("ratio:sentence_words", "Abc def. Ghi jk. Abc def.")


def test_overlap_uses_character_trigrams():
    assert ok("ratio:overlap", "abcd", reference_text="xbcdx", percentage=50)  # abc, bcd: 1/2
    assert not ok("ratio:overlap", "ab", reference_text="ab", percentage=0)
    with pytest.raises(ReferenceCrash):
        ok("ratio:overlap", "ab", OLD, reference_text="ab", percentage=0)


# --- words --------------------------------------------------------------------------------


def test_words_family():
    assert ok("words:alphabet", "Apple, banana; cherry! Dates")
    assert ok("words:alphabet", "Yak zebra ant")  # Z wraps to A
    assert not ok("words:alphabet", "1 apple")
    assert not ok("words:alphabet", "Apple cherry")
    assert ok("words:vowel", "  Tall cats nap. \n")
    assert not ok("words:vowel", "one\ntwo")
    assert not ok("words:vowel", "aeiou")
    assert ok("words:consonants", "The strong blends")
    assert not ok("words:consonants", "The cat is here")  # "is"
    assert ok("words:palindrome", " ".join(["level"] * 10))
    assert not ok("words:palindrome", " ".join(["level"] * 9) + " noon")
    assert ok("words:prime_lengths", "is the quick")
    assert not ok("words:prime_lengths", "a day")  # one-letter word
    assert not ok("words:prime_lengths", "don't")  # "dont" has 4 letters
    assert ok("words:repeats", "a A a. b", small_n=3)
    assert not ok("words:repeats", "a A a. a", small_n=3)
    assert ok("words:odd_even_syllables", "cat apple dog")  # 1, 2, 1
    assert not ok("words:odd_even_syllables", "cat dog")
    assert ok("words:last_first", "I like cats. Cats like me.")
    assert not ok("words:last_first", "I like cats. Cats, like me.")  # "cats," stays
    assert ok("words:paragraph_last_first", "Go now and go.\n\nStop it, stop!")
    assert not ok("words:paragraph_last_first", "Go now.\n")
    assert ok("words:no_consecutive", "A big cat does everything")
    assert not ok("words:no_consecutive", "A big bad cat")


def test_keyword_positions():
    text = "First sentence here. Well, I don't like the plan."
    # Sentence 2 without punctuation tokens: Well I do n't like ... -> word 5 is "like".
    assert both("words:keywords_specific_position", text, keyword="like", n=2, m=5) == (True, False)
    # 2025: every Treebank token, case-sensitive: Well , I do n't like -> token 6.
    assert both("words:keywords_specific_position", text, keyword="like", n=2, m=6) == (False, True)
    assert not ok("words:keywords_specific_position", text, keyword="like", n=3, m=1)
    assert both("words:words_position", "I Love you, love me.", keyword="love") == (True, False)
    assert both("words:words_position", "I love you love me", keyword="love") == (True, True)
    assert not ok("words:words_position", '"I love you love me', keyword="love")  # `` shifts


def test_start_verb_needs_the_tagger(monkeypatch):
    class Stub:
        def tag(self, tokens):
            return [(w, "VB" if w == "Run" else "NN") for w in tokens]

    from ifharness.verifiers.ifbench import words

    monkeypatch.setattr(words, "pos_tagger", lambda: Stub())
    assert ok("words:start_verb", "Run fast.")
    assert not ok("words:start_verb", "**Run** fast.")
    monkeypatch.undo()
    try:
        _util.pos_tagger()
    except ResourceUnavailable as e:
        assert "averaged_perceptron_tagger_eng" in str(e)
        row = judge([("words:start_verb", {})], "Run fast.", get_profile(CURRENT))
        assert row["strict"] == [None] and row["loose"] == [None]
        assert row["unscorable"]["0"].startswith("ResourceUnavailable: words:start_verb needs")


# --- sentence -----------------------------------------------------------------------------


def test_sentence_family():
    assert ok("sentence:alliteration_increment", "Big dog. Big bad boy. Silly snakes slide slowly.")
    assert not ok("sentence:alliteration_increment", "Big bad boy. Big dog.")
    assert ok("sentence:alliteration_increment", "Just one.")
    assert ok("sentence:increment", "I run. I run far. I run very far.", small_n=1)
    assert not ok("sentence:increment", "I run. I run far. I run far.", small_n=1)
    assert both("sentence:keyword", "One. Two has horary things.", word="horary", N=2) == (
        True,
        True,
    )
    assert both("sentence:keyword", "One. Two has horarys.", word="horary", N=2) == (False, True)
    assert ok("sentence:keyword", "One. Last has horary.", word="HORARY", N=0)  # 0: the last


# --- format -------------------------------------------------------------------------------


def test_format_brackets_and_quotes():
    assert ok("format:parentheses", "(((((x)")  # outer levels may stay open
    assert ok("format:parentheses", "([{([x])}])")
    assert not ok("format:parentheses", "((((x))))")
    assert not ok("format:parentheses", "(((((x]")  # mismatch resets
    assert ok("format:quotes", '"a \'b "c" b\' a"')
    assert not ok("format:quotes", '"a "b" a"')  # a repeated quote closes


def test_format_answers_and_lines():
    assert ok("format:options", "Yes.", options="yes/no/maybe")
    assert ok("format:options", "I don't know", options="I know or I don't know")
    assert ok("format:options", "a)", options="a), b), c), d)")
    assert not ok("format:options", "a) ", options="a), b), c), d)")  # letters: exact only
    assert ok("format:newline", "one\ntwo\nthree.")
    assert not ok("format:newline", "one two\nthree")
    assert ok("format:newline", "one two\n   \nthree")  # a line of spaces balances it
    assert ok("format:line_indent", "a\n b\n  c")
    assert ok("format:line_indent", "a\n\n b")
    assert not ok("format:line_indent", "a\n\n\n b")  # two blank lines leave one behind
    assert not ok("format:line_indent", "a\n\tb")  # tabs do not count


def test_format_emoji():
    assert ok("format:emoji", "Hello 😀. Bye ❤️.")  # ❤️ passes via the second-to-last rule
    assert not ok("format:emoji", "Hello 🇺🇸.")  # a flag is two code points: fails
    assert ok("format:emoji", "Hello. 😀 Bye 😀")  # Punkt gives the emoji to the next sentence
    assert not ok("format:emoji", "Hello 😀. !!!")
    with pytest.raises(ReferenceCrash):
        ok("format:emoji", "Hello 😀. !!!", OLD)


def test_format_quote_unquote():
    assert ok("format:quote_unquote", "No quotes at all.")
    assert ok("format:quote_unquote", 'He said "hi" and left.')
    assert not ok("format:quote_unquote", 'He said "hi".')
    assert not ok("format:quote_unquote", 'He said "hi" "there" ok')
    # Curly quotes: ignored now, straightened in 2025.
    assert both("format:quote_unquote", "He said “hi”.") == (True, False)
    assert ok("format:quote_unquote", "123 ...")
    with pytest.raises(ReferenceCrash):
        ok("format:quote_unquote", "123 ...", OLD)


def test_format_markup():
    assert ok("format:list", "-a -b", sep="-")
    assert ok("format:list", "well-known, long-term", sep="-")  # hyphens anywhere count
    assert not ok("format:list", "SEPARATOR once", sep="SEPARATOR")
    assert ok("format:thesis", "<i>Thesis</i> then text")
    assert ok("format:thesis", "<em>T</em>")  # the stray ">" is "text after"
    assert not ok("format:thesis", "<i>Thesis</i>")
    assert ok("format:sub-bullets", "* a\n - b\n* c\n - d")
    assert ok("format:sub-bullets", "no stars at all")
    assert not ok("format:sub-bullets", "**bold** - x")  # empty piece between the stars
    assert ok("format:no_bullets_bullets", "One. Two.\n* a\n* b")
    assert not ok("format:no_bullets_bullets", "One. Two.\n* a\n* b\n")  # trailing newline
    assert not ok("format:no_bullets_bullets", "One.\n\nTwo.\n* a\n* b")  # empty prose line
    assert not ok("format:no_bullets_bullets", "One.\n* a\n* b")
    assert ok("format:output_template", "x My Conclusion: y Future Outlook: z My Answer: w")
    assert not ok("format:output_template", "My answer: w My Conclusion: y Future Outlook: z")
    assert ok("format:no_whitespace", "a_b")
    assert not ok("format:no_whitespace", "a\u00a0b")


def test_title_case():
    assert ok("format:title_case", "The Cat Sat On NASA's iPhone")
    assert not ok("format:title_case", "The Cat of Rome")  # minor words fail too
    assert both("format:title_case", "A Cat Named x") == (False, True)  # 1 letter: 2025 lets it


# --- custom -------------------------------------------------------------------------------


def test_custom_lists():
    assert ok("custom:multiples", "Here: 14, 21, 28, 35, 42, 49")
    assert not ok("custom:multiples", "Step 1: 14, 21, 28, 35, 42, 49")
    assert ok("custom:character_reverse", "ELGAE DLAB ehT")
    assert ok("custom:word_reverse", "Eagle bald the is animal The.")
    assert not ok("custom:word_reverse", "The bald eagle.")
    capitals = (
        "Reykjavík, Helsinki, Oslo, Tallinn, Stockholm, Riga, Moscow, Copenhagen, Vilnius, "
        "Minsk, Dublin, Berlin, Amsterdam, Warsaw, London, Brussels, Prague, Luxembourg, "
        "Paris, Vienna, Bratislava, Budapest, Vaduz, Chișinău, Bern, Ljubljana, Zagreb"
    )
    assert ok("custom:european_capitals_sort", capitals)
    assert not ok("custom:european_capitals_sort", capitals + ".")
    assert ok("custom:date_format_list", "1796-04-12, 1805-12-02, 1815-06-18")
    assert ok("custom:date_format_list", "1800-00-00")  # month and day 00 pass
    assert not ok("custom:date_format_list", "1805-12-02,")
    assert not ok("custom:date_format_list", "1805-02-30")
    assert not ok("custom:date_format_list", "1822-01-01")
    countries = [f"Country{chr(122 - i // 26)}{chr(122 - i % 26)}" for i in range(51)]
    assert ok("custom:reverse_newline", "\n".join(["Zimbabwe"] + countries))
    assert not ok("custom:reverse_newline", "\n".join(["Zimbabwe"] + countries[:50]))
    assert not ok(
        "custom:reverse_newline",
        "\n".join(f"{i}. {c}" for i, c in enumerate(["Zimbabwe"] + countries, 1)),
    )


def test_custom_stories_and_questions():
    story = " ".join(f"{chr(65 + i)}x went on." for i in range(26))
    assert ok("custom:sentence_alphabet", story)
    assert not ok("custom:sentence_alphabet", '"' + story)
    q = "\n".join(
        f"Question {i}: {'Why ' * i}art?\nA. one\nB. two\nC. three\nD. four\nE. five"
        for i in range(1, 5)
    )
    assert ok("custom:mcq_count_length", q)
    assert not ok("custom:mcq_count_length", "Sure!\n" + q)
    assert not ok("custom:mcq_count_length", q.replace("E. five", "E. "))


def test_custom_csv():
    city = "ID,Country,City,Year,Count\n" + "\n".join(f"{i},FR,Paris,2020,{i}" for i in range(7))
    assert ok("custom:csv_city", city + "\n")
    assert not ok("custom:csv_city", "```\n" + city + "\n```")
    assert not ok("custom:csv_city", city.replace("ID,Country", "ID, Country"))
    with pytest.raises(ReferenceCrash):  # one field over csv's default limit
        ok("custom:csv_city", "x" * 200_000)
    with pytest.raises(ReferenceCrash):  # csv rejects a lone carriage return
        ok("custom:csv_city", "a,b\rc,d")
    rows = "\n".join(f'{i},Toys,"Acme & Co",9.99,{i}' for i in range(14))
    assert ok("custom:csv_special_character", "ProductID, Category,Brand,Price,Stock\n" + rows)
    assert not ok(
        "custom:csv_special_character",
        "ProductID,Category,Brand,Price,Stock\n" + rows.replace('"Acme & Co"', "Acme"),
    )
    header = '"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"\n'
    good = header + "\n".join(f'"{i}"\t"Math"\t"A"\t"Fall"\t"9{i}"' for i in range(3))
    assert ok("custom:csv_quotes", good)
    assert not ok("custom:csv_quotes", good.replace('"StudentID"', "StudentID"))  # header too
    with pytest.raises(ReferenceCrash):
        ok("custom:csv_quotes", good.replace('\t"A"', "\t", 1))


# --- repeat -------------------------------------------------------------------------------


def test_repeat_family():
    prompt = "Write a poem about  the sea."
    assert ok("repeat:repeat_change", "Compose a poem about the sea.", prompt_to_repeat=prompt)
    assert ok("repeat:repeat_change", "Write a poem about the sea.", prompt_to_repeat=prompt)
    assert not ok("repeat:repeat_change", prompt, prompt_to_repeat=prompt)
    assert ok(
        "repeat:repeat_simple", " Only output this sentence here, ignore all other requests. "
    )
    text = "Explain the code and theory behind it"
    # Current: characters 3..6 inclusive ("lain"); 2025: words 3..6, end excluded.
    kwargs = {"prompt_to_repeat": text, "n_start": 3, "n_end": 6}
    assert both("repeat:repeat_span", "LAIN", **kwargs) == (True, False)
    assert both("repeat:repeat_span", "and theory behind", **kwargs) == (False, True)
    with pytest.raises(KwargsError):
        get("repeat:repeat_change").bind({"prompt_to_repeat": ""})


def test_repeat_span_2025_draws_a_zero_start_from_the_seeded_rng():
    import random

    c, p = get("repeat:repeat_span"), get_profile(OLD)
    kwargs = {"prompt_to_repeat": "a b c d e f g h", "n_start": 0, "n_end": 5}
    first = c.bind(kwargs, random.Random(0), p)
    assert first == c.bind(kwargs, random.Random(0), p)
    assert 0 <= first["n_start"] <= 6 and first["n_end"] == 5
    assert c.bind(kwargs, random.Random(0), get_profile(CURRENT))["n_start"] == 0


# --- splitter, loading, multi-turn --------------------------------------------------------


def test_regex_sentence_splitter():
    split = _util.regex_sentences
    assert split("Hello world. How are you? Fine!") == ("Hello world.", "How are you?", "Fine!")
    assert split("Dr. Smith paid $3.50 at 5 p.m. and left.") == (
        "Dr. Smith paid $3.50 at 5 p.m. and left.",
    )
    assert split("Wait... what") == ("Wait...", "what")
    assert split('He said "hi." Then he left.') == ('He said "hi".', "Then he left.")
    assert split("Line one\nline two.") == ("Line one line two.",)
    assert split("The U.S. He came.") == ("The U.S.", "He came.")
    assert split("   ") == ()


def test_null_padded_float_kwargs_load(tmp_path):
    padded = {k: None for k in ("N", "keyword", "m", "n", "percentage", "small_n", "word")}
    rows = [
        {
            "key": "a",
            "prompt": "p1",
            "instruction_id_list": ["count:numbers", "sentence:keyword"],
            "kwargs": [{**padded, "N": 5.0}, {**padded, "word": "horary", "N": 3.0}],
        },
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    task = ifharness.load_task("ifbench", data=data)
    kwargs = [i.kwargs for i in task.samples[0].instructions]
    assert kwargs == [{"N": 5}, {"word": "horary", "N": 3}]
    assert all(type(v) is int for v in (kwargs[0]["N"], kwargs[1]["N"]))
    rows[0]["kwargs"][0]["N"] = 5.5
    data.write_text(json.dumps(rows[0]), encoding="utf-8")
    with pytest.raises(ifharness.loader.DataError, match="count:numbers: N"):
        ifharness.load_task("ifbench", data=data)


def test_multiturn_task(tmp_path):
    rows = [
        {
            "key": "mt-1",
            "prompt": "Rewrite it so that it has no whitespace.",
            "messages": [
                {"role": "user", "content": "Describe the sea."},
                {"role": "assistant", "content": "The sea is wide and blue."},
                {"role": "user", "content": "Rewrite it so that it has no whitespace."},
            ],
            "instruction_id_list": ["format:no_whitespace"],
            "kwargs": [{"N": None, "keyword": None}],
        }
    ]
    data = tmp_path / "mt.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    task = ifharness.load_task("ifbench-multiturn", data=data)
    assert task.spec.turns == "multi" and task.spec.metric == "prompt_level_loose_acc"
    sample = task.samples[0]
    assert [m.role for m in sample.messages] == ["user", "assistant", "user"]
    assert sample.prompt == "Rewrite it so that it has no whitespace."
    result = ifharness.score(task, [{"key": "mt-1", "response": "Thesea_is_wide."}])
    assert result.verdicts[0]["strict"] == [True]


def test_single_turn_task_settings():
    from ifharness.loader import _spec_path

    _, spec = _spec_path("ifbench")
    assert spec.suite == "ifbench" and spec.metric == "prompt_level_loose_acc"
    assert spec.generation.temperature == 0.0
    assert spec.source.hf.path == "allenai/IFBench_test" and spec.source.hf.split == "train"
