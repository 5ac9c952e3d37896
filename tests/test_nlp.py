"""Our download-free resources give NLTK's own results.

NLTK's reference here is NLTK itself with its ``punkt_tab`` English data taken from a PyPI
wheel (llama-index-core ships NLTK's data folder; it is a dev dependency, installed with
--no-deps, only for this proof).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from ifharness.verifiers import Text, nlp
from tests.support.data import read_jsonl, shared


def _nltk_data_dir() -> Path:
    try:
        dist = metadata.distribution("llama-index-core")
    except metadata.PackageNotFoundError:
        pytest.skip(
            "llama-index-core (NLTK's punkt_tab data, dev dependency) is not installed; "
            "`make install`"
        )
    root = Path(dist.locate_file("llama_index/core/_static/nltk_cache"))
    if not (root / "tokenizers" / "punkt_tab" / "english").is_dir():
        pytest.fail(f"{root} lacks tokenizers/punkt_tab/english")
    return root


@pytest.fixture(scope="module")
def nltk_reference():
    import nltk

    root = str(_nltk_data_dir())
    saved = list(nltk.data.path)
    nltk.data.path[:] = [root]  # NLTK's own data only, nothing from elsewhere on the machine
    try:
        yield nltk.sent_tokenize, nltk.word_tokenize
    finally:
        nltk.data.path[:] = saved


def _texts() -> list[str]:
    texts = [r["response"] for r in read_jsonl(shared("ifeval/gpt4_responses.jsonl"))]
    return texts


def test_sentences_and_words_identical_to_nltk_on_every_gpt4_answer(nltk_reference):
    sent_ref, word_ref = nltk_reference
    texts = _texts()
    assert len(texts) == 540
    for text in texts:
        assert nlp.sent_tokenize(text) == sent_ref(text)
        assert nlp.word_tokenize(text) == word_ref(text)


def test_identical_on_loose_variants(nltk_reference):
    sent_ref, _ = nltk_reference
    for text in _texts()[:200]:
        for v in Text(text).loose_variants:
            assert nlp.sent_tokenize(v.raw) == sent_ref(v.raw)


def test_model_parameters_equal_punkt_tab(nltk_reference):
    from nltk.data import find
    from nltk.tokenize.punkt import load_punkt_params

    ref = load_punkt_params(find("tokenizers/punkt_tab/english/"))
    ours = nlp.punkt_english()._params
    assert ours.abbrev_types == ref.abbrev_types
    assert ours.collocations == ref.collocations
    assert ours.sent_starters == ref.sent_starters
    # ortho_context is a defaultdict in NLTK: lookups during tokenizing add zero entries.
    nonzero = lambda d: {k: v for k, v in d.items() if v}  # noqa: E731
    assert nonzero(ours.ortho_context) == nonzero(ref.ortho_context)
    assert len(nonzero(ref.ortho_context)) > 20000


def test_langdetect_rs_identical_to_langdetect_on_our_data():
    """langdetect-rs is adopted only because it agrees with langdetect on every text we
    check: each GPT-4 answer and each of its loose variants, seeded as we seed it."""
    import langdetect
    import langdetect_rs

    langdetect.DetectorFactory.seed = 0
    langdetect_rs.DetectorFactory.seed = 0

    def both(text: str) -> tuple:
        out = []
        for mod in (langdetect, langdetect_rs):
            try:
                out.append(mod.detect(text))
            except mod.LangDetectException as e:
                out.append(("error", str(e)))
        return tuple(out)

    texts = _texts()
    checked = 0
    for text in texts:
        for t in [Text(text), *Text(text).loose_variants[:3]]:
            a, b = both(t.raw)
            assert a == b, t.raw[:80]
            checked += 1
    for special in [
        "",
        "12345 !!!",
        "http://example.com",
        "bonjour tout le monde",
        "ok",
        "日本語の文章です",
    ]:
        a, b = both(special)
        assert a == b
    assert checked > 1500


def test_no_download_at_import(tmp_path):
    """Importing and using the verifiers touches no NLTK data path and no network."""
    import subprocess
    import sys

    code = (
        "import nltk, socket\n"
        "def no(*a, **k): raise SystemExit('network used')\n"
        "socket.socket.connect = no\n"
        "nltk.data.path[:] = []\n"
        "from ifharness.verifiers import check\n"
        "assert check('length_constraints:number_sentences', 'One. Two.', num_sentences=2, "
        "relation='at least')\n"
        "assert check('change_case:english_lowercase', 'all lower case english words here')\n"
        "print('ok')\n"
    )
    env = {"NLTK_DATA": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert json.dumps(list(tmp_path.iterdir())) == "[]"
