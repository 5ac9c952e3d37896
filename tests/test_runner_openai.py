"""``ifharness run --backend openai`` against a fake OpenAI-compatible server on loopback.

Fast tier: the server is ``tests.support.fake_openai.FakeUpstream`` (real HTTP on 127.0.0.1,
an ephemeral port), with faults scripted per sample: 429 with Retry-After, 5xx, bodies that
are not chat completions, answers slower than ``--request-timeout``, dropped connections,
refused keys, unknown models. Everything goes through the command line and is checked in
the files of the run folder (run.json, completions.jsonl, failed.jsonl, verdicts.jsonl,
metrics.json), so the runner's insides may change freely. Backoffs and timeouts are cut to
hundredths of a second. The same runner against a real vLLM server, answer for answer
against the offline engine, is the slow ``test_runner_openai_vllm.py``.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from pathlib import Path

import pytest

from ifharness.cli import main
from tests.support.data import (
    KEY_BASE,
    ifeval_args,
    prompt_rows,
    read_jsonl,
    write_jsonl,
    write_prompts,
)
from tests.support.fake_openai import DROP, GARBAGE, TRANSIENT, free_port, reply

MODEL = "tiny"  # what the fake server lists
FAST = [
    "--retry-backoff",
    "0.01",
    "--request-timeout",
    "0.5",
    "--max-retries",
    "3",
    "--chunk-size",
    "2",
    "--max-tokens",
    "32",
]


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch):
    """A key in this machine's environment must not reach the fake server or the tests."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def run(capsys, base_url: str, data: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    """``ifharness run --backend openai`` in this process: exit code, stdout, stderr."""
    model = () if "--models" in extra or "--model" in extra else ("--model", MODEL)
    code = main(
        [
            "run",
            "--backend",
            "openai",
            "--base-url",
            base_url,
            *ifeval_args(data, out),
            *FAST,
            *model,
            *extra,
        ]
    )
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def answers(out: Path) -> dict[int, str]:
    """completions.jsonl as key -> answer; fails if a sample is written twice."""
    rows = read_jsonl(out / "completions.jsonl")
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), f"a sample written twice: {sorted(keys)}"
    return {r["key"]: r["response"] for r in rows}


def expected(n: int, without: set[int] = frozenset()) -> dict[int, str]:
    """What the fake server answers to the first ``n`` prompts of ``prompt_rows``."""
    return {r["key"]: reply(r["prompt"]) for r in prompt_rows(n) if r["key"] not in without}


def run_json(out: Path) -> dict:
    return json.loads((out / "run.json").read_text(encoding="utf-8"))


def test_answers_are_the_servers_and_score_as_ifharness_score_does(tmp_path, capsys, fake_upstream):
    fake = fake_upstream()
    data = write_prompts(tmp_path / "prompts.jsonl", 5)
    code, stdout, stderr = run(capsys, fake.base_url, data, tmp_path / "run")
    assert code == 0, stderr[-3000:]
    hits = fake.hits
    assert (hits[0].method, hits[0].path) == ("GET", "/v1/models")  # one probe, first
    assert sum(h.method == "GET" for h in hits) == 1
    assert sorted(h.key for h in fake.chats()) == sorted(expected(5))  # one request each
    for h in fake.chats():
        assert h.body["model"] == MODEL and h.body["max_tokens"] == 32
        assert h.body["temperature"] == 0 and "seed" not in h.body  # greedy: no seed sent
        assert h.body["messages"][-1]["role"] == "user"
    assert answers(tmp_path / "run") == expected(5)
    rows = read_jsonl(tmp_path / "run" / "completions.jsonl")
    assert all(r["finish_reason"] == "stop" and r["reasoning"] is None for r in rows)
    assert all(r["n_tokens"] == len(r["response"].split()) for r in rows)  # usage, as sent
    run_info = run_json(tmp_path / "run")
    assert run_info["status"] == "complete" and run_info["backend"]["name"] == "openai"
    assert not (tmp_path / "run" / "failed.jsonl").exists()
    assert "prompt_level_strict_acc" in stdout

    # the same answers through `ifharness score`: the same verdicts, the same headline
    responses = write_jsonl(
        tmp_path / "answers.jsonl", [{"key": k, "response": v} for k, v in expected(5).items()]
    )
    assert (
        main(
            [
                "score",
                "--task",
                "ifeval",
                "--data",
                str(data),
                "--responses",
                str(responses),
                "--out",
                str(tmp_path / "score"),
            ]
        )
        == 0
    )
    assert (tmp_path / "run" / "verdicts.jsonl").read_text() == (
        tmp_path / "score" / "verdicts.jsonl"
    ).read_text()
    ran = json.loads((tmp_path / "run" / "metrics.json").read_text())
    scored = json.loads((tmp_path / "score" / "metrics.json").read_text())
    assert ran["prompt_level_strict_acc"] == scored["prompt_level_strict_acc"]
    assert ran["inst_level_loose_acc"] == scored["inst_level_loose_acc"]


def test_transient_faults_are_retried_until_every_sample_is_written_once(
    tmp_path, capsys, fake_upstream
):
    fake = fake_upstream(script=TRANSIENT, slow_s=3.0)
    data = write_prompts(tmp_path / "prompts.jsonl", 8)
    code, _, stderr = run(capsys, fake.base_url, data, tmp_path / "run", "--concurrency", "4")
    assert code == 0, stderr[-3000:]
    for key, fates in TRANSIENT.items():  # each fault was met, then one good answer
        assert [h.fate for h in fake.chats(key)] == [*fates, "ok"], key
    assert [h.fate for h in fake.chats(1007)] == ["ok"]
    assert answers(tmp_path / "run") == expected(8)
    assert run_json(tmp_path / "run")["status"] == "complete"
    assert not (tmp_path / "run" / "failed.jsonl").exists()
    # the slow answer was given up on at --request-timeout, not waited for
    slow, retry = fake.chats(1005)
    assert 0.4 <= retry.at - slow.at < 2.0


def test_retry_after_is_honoured_and_backoff_starts_at_retry_backoff(
    tmp_path, capsys, fake_upstream
):
    fake = fake_upstream(script={1000: ["429"], 1001: ["500"]}, retry_after="1")
    data = write_prompts(tmp_path / "prompts.jsonl", 2)
    code, _, stderr = run(capsys, fake.base_url, data, tmp_path / "run")
    assert code == 0, stderr[-3000:]
    limited, after = fake.chats(1000)
    assert after.at - limited.at >= 0.95  # Retry-After: 1, although --retry-backoff is 0.01
    failed, again = fake.chats(1001)
    assert again.at - failed.at < 0.5  # no Retry-After: 0.01 s jittered, plus scheduling


def test_samples_that_keep_failing_go_to_failed_jsonl_and_a_rerun_retries_only_them(
    tmp_path, capsys, fake_upstream
):
    fake = fake_upstream(always={1001: "503", 1004: "400"})
    data = write_prompts(tmp_path / "prompts.jsonl", 6)
    out = tmp_path / "run"
    code, _, stderr = run(capsys, fake.base_url, data, out, "--max-retries", "2")
    assert code == 3, stderr[-3000:]  # scored, but incomplete
    assert "incomplete" in stderr and "failed.jsonl" in stderr
    failed = {r["key"]: r for r in read_jsonl(out / "failed.jsonl")}
    assert set(failed) == {1001, 1004}
    assert failed[1001]["attempts"] == 3 and failed[1001]["status"] == 503  # 1 + 2 retries
    assert failed[1004]["attempts"] == 1 and failed[1004]["status"] == 400  # not retried
    assert "503" in failed[1001]["error"] and "400" in failed[1004]["error"]
    assert len(fake.chats(1001)) == 3 and len(fake.chats(1004)) == 1
    assert answers(out) == expected(6, without={1001, 1004})
    run_info = run_json(out)
    assert run_info["status"] == "incomplete" and "failed.jsonl" in run_info["error"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["missing"]) == [1001, 1004]
    verdicts = {r["key"]: r for r in read_jsonl(out / "verdicts.jsonl")}
    assert len(verdicts) == 6  # the failed samples are scored, as not followed
    assert not any(verdicts[1001]["strict"]) and not any(verdicts[1004]["loose"])

    # the same command again, the server mended: exactly the two failed samples are asked
    fake.reset()
    fake.always = {}
    code, _, stderr = run(capsys, fake.base_url, data, out, "--max-retries", "2")
    assert code == 0, stderr[-3000:]
    assert f"resuming {out}: 4/6 samples already generated" in stderr
    assert sorted(h.key for h in fake.chats()) == [1001, 1004]
    assert not (out / "failed.jsonl").exists()
    assert answers(out) == expected(6)
    run_info = run_json(out)
    assert run_info["status"] == "complete" and "error" not in run_info
    assert [s.get("status") for s in run_info["sessions"]] == ["incomplete", "complete"]
    assert json.loads((out / "metrics.json").read_text())["missing"] == []

    # and once more: nothing left to do, nothing sent
    fake.reset()
    code, _, stderr = run(capsys, fake.base_url, data, out, "--max-retries", "2")
    assert code == 0, stderr[-3000:]
    assert fake.hits == [] and answers(out) == expected(6)


def test_the_key_is_sent_but_never_written_or_printed(tmp_path, capsys, monkeypatch, fake_upstream):
    secret = "sk-" + secrets.token_hex(16)
    monkeypatch.setenv("IFH_TEST_KEY", secret)
    # a careless server that quotes the Authorization header back in its error messages
    fake = fake_upstream(api_key=secret, leak_key=True, always={1002: "503"})
    data = write_prompts(tmp_path / "prompts.jsonl", 4)
    out = tmp_path / "run"
    code, stdout, stderr = run(
        capsys, fake.base_url, data, out, "--api-key-env", "IFH_TEST_KEY", "--max-retries", "1"
    )
    assert code == 3, stderr[-3000:]
    assert {h.authorization for h in fake.hits} == {f"Bearer {secret}"}  # used on every request
    (failure,) = read_jsonl(out / "failed.jsonl")
    assert "Authorization" in failure["error"]  # the server's echo was kept, scrubbed
    files = [f for f in out.rglob("*") if f.is_file()]
    assert {"run.json", "completions.jsonl", "failed.jsonl"} <= {f.name for f in files}
    for f in files:
        assert secret not in f.read_text(encoding="utf-8", errors="replace"), f
    assert secret not in stdout + stderr
    assert "IFH_TEST_KEY" in (out / "run.json").read_text()  # the variable's name, only


def test_a_refused_key_stops_the_run_at_the_probe(tmp_path, capsys, monkeypatch, fake_upstream):
    secret = "sk-" + secrets.token_hex(16)
    monkeypatch.setenv("IFH_WRONG_KEY", secret)
    fake = fake_upstream(api_key="sk-the-right-one", leak_key=True)
    data = write_prompts(tmp_path / "prompts.jsonl", 4)
    code, stdout, stderr = run(
        capsys, fake.base_url, data, tmp_path / "run", "--api-key-env", "IFH_WRONG_KEY"
    )
    assert code == 2
    assert "HTTP 401" in stderr and "$IFH_WRONG_KEY" in stderr
    assert stderr.count("error:") == 1
    assert [(h.method, h.path) for h in fake.hits] == [("GET", "/v1/models")]  # nothing more
    assert secret not in stdout + stderr
    assert not (tmp_path / "run" / "completions.jsonl").exists() or not read_jsonl(
        tmp_path / "run" / "completions.jsonl"
    )

    fake.reset()  # no key at all: the message says how to pass one
    code, _, stderr = run(capsys, fake.base_url, data, tmp_path / "run2")
    assert code == 2 and "HTTP 401" in stderr and "--api-key-env" in stderr
    assert {h.authorization for h in fake.hits} == {""}


def test_a_key_variable_that_is_not_set_is_refused_before_any_request(
    tmp_path, capsys, fake_upstream
):
    fake = fake_upstream()
    data = write_prompts(tmp_path / "prompts.jsonl", 2)
    code, _, stderr = run(
        capsys, fake.base_url, data, tmp_path / "run", "--api-key-env", "IFH_NO_SUCH_VARIABLE_SET"
    )
    assert code == 2 and "IFH_NO_SUCH_VARIABLE_SET" in stderr and "not set" in stderr
    assert fake.hits == []


def test_an_unreachable_base_url_fails_fast(tmp_path, capsys):
    data = write_prompts(tmp_path / "prompts.jsonl", 2)
    started = time.monotonic()
    code, _, stderr = run(capsys, f"http://127.0.0.1:{free_port()}/v1", data, tmp_path / "run")
    assert code == 2
    assert "cannot reach" in stderr and "is the server running" in stderr
    assert stderr.count("error:") == 1
    assert time.monotonic() - started < 10


def test_a_model_the_server_does_not_list_fails_at_the_probe(tmp_path, capsys, fake_upstream):
    fake = fake_upstream(models=[MODEL, "other"])
    data = write_prompts(tmp_path / "prompts.jsonl", 4)
    code, _, stderr = run(capsys, fake.base_url, data, tmp_path / "run", "--model", "no-such-model")
    assert code == 2
    assert "'no-such-model' is not served" in stderr and f"{MODEL}, other" in stderr
    assert [(h.method, h.path) for h in fake.hits] == [("GET", "/v1/models")]


def test_without_a_models_endpoint_the_first_404_stops_the_run(tmp_path, capsys, fake_upstream):
    fake = fake_upstream(models_endpoint=False)
    data = write_prompts(tmp_path / "prompts.jsonl", 6)
    code, _, stderr = run(
        capsys,
        fake.base_url,
        data,
        tmp_path / "run",
        "--model",
        "no-such-model",
        "--concurrency",
        "2",
    )
    assert code == 2
    assert "does not know model 'no-such-model'" in stderr and stderr.count("error:") == 1
    assert 1 <= len(fake.chats()) <= 2  # at most one per worker, none retried
    assert all(h.fate == "404" for h in fake.chats())
    assert run_json(tmp_path / "run")["status"] == "failed"


def test_several_models_one_folder_each_and_a_bad_name_does_not_stop_the_rest(
    tmp_path, capsys, fake_upstream
):
    fake = fake_upstream(models=[MODEL, "other"])
    data = write_prompts(tmp_path / "prompts.jsonl", 3)
    listing = tmp_path / "models.txt"
    listing.write_text(f"# models to run\n{MODEL}\nno-such-model  # a typo\nother\n")
    code, stdout, stderr = run(
        capsys, fake.base_url, data, tmp_path / "runs", "--models", f"@{listing}"
    )
    assert code == 2, stderr[-3000:]  # one of the three failed
    assert "no-such-model" in stderr and "is not served" in stderr
    for name in (MODEL, "other"):
        folder = tmp_path / "runs" / name
        assert run_json(folder)["status"] == "complete"
        assert run_json(folder)["model"]["name"] == name
        assert answers(folder) == expected(3)
    assert {h.body["model"] for h in fake.chats()} == {MODEL, "other"}
    assert f"{MODEL}: complete" in stdout and "no-such-model: failed" in stdout
    assert "other: complete" in stdout


def test_what_the_server_says_about_an_answer_is_kept(tmp_path, capsys, fake_upstream):
    """A trace sent apart (``reasoning_content``) stays apart; a cut answer says so."""
    fake = fake_upstream(reasoning=True)
    data = write_prompts(tmp_path / "prompts.jsonl", 3)
    code, _, stderr = run(capsys, fake.base_url, data, tmp_path / "run", "--max-tokens", "5")
    assert code == 0, stderr[-3000:]
    assert {h.body["max_tokens"] for h in fake.chats()} == {5}
    rows = {r["key"]: r for r in read_jsonl(tmp_path / "run" / "completions.jsonl")}
    assert sorted(rows) == [KEY_BASE, KEY_BASE + 1, KEY_BASE + 2]
    for key, full in expected(3).items():
        assert rows[key]["response"] == " ".join(full.split()[:5])
        assert rows[key]["reasoning"] == f"Thinking about sample {key} first."
        assert rows[key]["finish_reason"] == "length"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["truncation_rate"] == 1.0


def test_faults_in_front_of_another_server_pass_its_answers_through(
    tmp_path, capsys, fake_upstream
):
    """The slow tier's set-up (faults in front of a real vLLM server), on two fakes."""
    behind = fake_upstream(models=["served-behind"])
    front = fake_upstream(upstream=behind.port, script={1000: ["500", DROP], 1002: [GARBAGE]})
    data = write_prompts(tmp_path / "prompts.jsonl", 3)
    code, _, stderr = run(
        capsys, front.base_url, data, tmp_path / "run", "--model", "served-behind"
    )
    assert code == 0, stderr[-3000:]  # the listing came from behind: the name is known
    assert [h.fate for h in front.chats(1000)] == ["500", DROP, "ok"]
    assert sorted(h.key for h in behind.chats()) == [1000, 1001, 1002]  # only the good ones
    assert answers(tmp_path / "run") == expected(3)


def test_backoff_doubles_is_jittered_and_capped_and_retry_after_is_read():
    from email.utils import formatdate

    from ifharness.runners.openai import backoff_delay, parse_retry_after

    rng = random.Random(0)
    delays = [backoff_delay(a, 0.5, 8.0, None, rng) for a in range(8)]
    assert 0.25 <= delays[0] <= 0.5 and all(d <= 8.0 for d in delays)
    assert all(2**a * 0.25 <= d for a, d in enumerate(delays[:4]))  # doubling, jittered
    assert 4.0 <= delays[-1] <= 8.0  # capped
    assert backoff_delay(0, 0.5, 8.0, 3.0, rng) == 3.0  # Retry-After wins when longer
    assert backoff_delay(0, 0.5, 8.0, 30.0, rng) == 8.0  # but is capped
    assert parse_retry_after("2") == 2.0 and parse_retry_after("junk") is None
    assert 8 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
