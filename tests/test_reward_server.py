"""``ifharness serve-reward``: the real CLI as a subprocess on a loopback port.

One server per module (started once, stopped with SIGINT at the end, which must exit 0).
Expected rewards come from the in-process :func:`ifharness.reward.reward`, so the server is
checked against the function it wraps, not against numbers written here twice.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from ifharness.reward import reward  # noqa: E402

SUITE = "ifeval"
MAX_CHARS = 2000
MAX_REQUEST_BYTES = 64 * 1024

NO_COMMA = [{"id": "punctuation:no_comma", "kwargs": {}}]
UNDER_5_WORDS = [
    {"id": "length_constraints:number_words", "kwargs": {"relation": "less than", "num_words": 5}}
]


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str, banner: str) -> None:
        self.proc, self.url, self.banner = proc, url, banner

    def post(self, route: str, body: Any, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + route, json=body, timeout=30, **kw)


def start_server(*flags: str, timeout: float = 90) -> Server:
    cmd = [sys.executable, "-m", "ifharness.cli", "serve-reward", "--port", "0", *flags]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("serving rewards on "):
            url = line.split()[3]
            return Server(proc, url, line)
    proc.kill()
    raise AssertionError("serve-reward did not start:\n" + "".join(lines))


def stop_server(server: Server) -> tuple[int, str]:
    server.proc.send_signal(signal.SIGINT)
    try:
        rest, _ = server.proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        rest, _ = server.proc.communicate()
    return server.proc.returncode, rest


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_server(
        "--workers",
        "2",
        "--suite",
        SUITE,
        "--max-chars",
        str(MAX_CHARS),
        "--max-request-bytes",
        str(MAX_REQUEST_BYTES),
    )
    yield s
    code, rest = stop_server(s)
    assert code == 0, rest
    assert "stopped" in rest


def expected(response: str, constraints: Any, **kw: Any) -> float:
    return reward(response, constraints, suite=SUITE, max_chars=MAX_CHARS, **kw).score


# --- the start-up banner and /health ----------------------------------------------------------


def test_banner_and_health(server: Server) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    h = httpx.get(server.url + "/health", timeout=10).json()
    assert h["status"] == "ok"
    assert (h["workers"], h["suite"], h["max_chars"]) == (2, SUITE, MAX_CHARS)
    assert h["max_request_bytes"] == MAX_REQUEST_BYTES
    assert (h["mode"], h["reduce"]) == ("strict", "fraction")


# --- /verify ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "constraints", "followed"),
    [
        ("no commas in here at all", NO_COMMA, [True]),
        ("one, two", NO_COMMA, [False]),
        ("four words right here", UNDER_5_WORDS, [True]),
        ("this answer has six words", UNDER_5_WORDS, [False]),
        ("short, sharp", NO_COMMA + UNDER_5_WORDS, [False, True]),
    ],
)
def test_verify(server: Server, response: str, constraints: list, followed: list) -> None:
    r = server.post("/verify", {"response": response, "constraints": constraints})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["follow_instruction_list"] == followed
    assert out["follow_all_instructions"] is all(followed)
    assert out["reward"] == sum(followed) / len(followed) == expected(response, constraints)
    assert [v["id"] for v in out["verdicts"]] == [c["id"] for c in constraints]
    assert out["over_budget"] is False


def test_verify_nemo_gym_row_and_reduce_all(server: Server) -> None:
    """A NeMo-Gym / IFEval row as it is (instruction_id_list + kwargs at the top level)."""
    row = {
        "id": 7,
        "prompt": "Write four words, no commas.",
        "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
        "kwargs": [{}, {"relation": "less than", "num_words": 3}],
        "response": "four words no commas",
    }
    out = server.post("/verify", row).json()
    assert out["follow_instruction_list"] == [True, False]
    assert out["reward"] == 0.5
    out = server.post("/verify", {**row, "reduce": "all"}).json()
    assert out["reward"] == 0.0
    assert out["follow_all_instructions"] is False


def test_verify_label_string_and_loose(server: Server) -> None:
    """The RL label string form; loose mode forgives a markdown-wrapped first line."""
    label = str([{"instruction_id": ["change_case:english_lowercase"], "kwargs": [None]}])
    text = "all lower case here"
    out = server.post("/verify", {"response": text, "constraints": label}).json()
    assert out["reward"] == 1.0 == expected(text, label)
    text = "**Title**\nall lower case here"
    strict = server.post("/verify", {"response": text, "constraints": label}).json()
    loose = server.post("/verify", {"response": text, "constraints": label, "mode": "loose"})
    assert strict["reward"] == expected(text, label)
    assert loose.json()["reward"] == expected(text, label, mode="loose")


def test_over_budget_answer_is_flagged(server: Server) -> None:
    text = "word " * (MAX_CHARS // 5 + 10)
    out = server.post("/verify", {"response": text, "constraints": NO_COMMA}).json()
    assert out["over_budget"] is True
    assert out["reward"] == 0.0
    assert out["follow_all_instructions"] is False
    assert out["follow_instruction_list"] == [None]
    assert str(MAX_CHARS) in out["budget_reason"]


def test_reasoning_is_removed_first(server: Server) -> None:
    text = "<think>commas, commas, commas</think>the answer has none"
    out = server.post("/verify", {"response": text, "constraints": NO_COMMA}).json()
    assert out["reward"] == 1.0 == expected(text, NO_COMMA)


def test_verify_nemo_gym_responses_object(server: Server) -> None:
    """NeMo-Gym sends the policy's answer as an OpenAI Responses object."""
    answer = {
        "output": [
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "no commas here"}],
            },
        ]
    }
    body = {"response": answer, "instruction_id_list": ["punctuation:no_comma"], "kwargs": [None]}
    out = server.post("/verify", body).json()
    assert out["reward"] == 1.0
    assert out["follow_instruction_list"] == [True]
    r = server.post("/verify", {**body, "response": {"output": "x"}})
    assert r.status_code == 400
    assert r.json()["field"] == "response"


# --- /openrlhf ------------------------------------------------------------------------------


def test_openrlhf_body(server: Server) -> None:
    """OpenRLHF's remote RM body: the response is cut out of the query as reward_func does."""
    from ifharness.reward.openrlhf import make_reward_func

    prompt = "<|im_start|>user\nNo commas please.<|im_end|>\n<|im_start|>assistant\n"
    queries = [prompt + "fine by me<|im_end|>", prompt + "well, no<|im_end|>", "junk"]
    prompts = [prompt, prompt, "other prompt"]
    label = str([{"instruction_id": ["punctuation:no_comma"], "kwargs": [None]}])
    labels = [label, label, label]
    r = server.post("/openrlhf", {"query": queries, "prompts": prompts, "labels": labels})
    assert r.status_code == 200, r.text
    out = r.json()
    local = make_reward_func(tensors=False, suite=SUITE, max_chars=MAX_CHARS, workers=0)
    want = local(queries, prompts, labels)
    assert out["rewards"] == want["rewards"] == [1.0, 0.0, 1.0]
    assert out["scores"] == want["scores"]
    assert out["extra_logs"] == want["extra_logs"]
    bad = server.post("/openrlhf", {"query": queries, "prompts": prompts, "labels": labels[:2]})
    assert bad.status_code == 400
    assert bad.json()["field"] == "labels"
    bad = server.post(
        "/openrlhf", {"query": queries, "prompts": prompts, "labels": [label, label, 5]}
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "labels[2]"


# --- /verify_batch ------------------------------------------------------------------------


def test_verify_batch_one_set_for_all(server: Server) -> None:
    responses = ["a, b", "a b", "", "x y z"]
    r = server.post("/verify_batch", {"responses": responses, "constraints": NO_COMMA})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rewards"] == [expected(t, NO_COMMA) for t in responses] == [0.0, 1.0, 0.0, 1.0]
    assert [x["reward"] for x in out["results"]] == out["rewards"]
    assert out["results"][2]["empty_answer"] is True


def test_verify_batch_one_set_per_response(server: Server) -> None:
    responses = ["a, b", "this has five words total", "short"]
    sets = [NO_COMMA, UNDER_5_WORDS, {"instruction_id_list": ["punctuation:no_comma"]}]
    out = server.post("/verify_batch", {"responses": responses, "constraints": sets}).json()
    assert out["rewards"] == [expected(t, c) for t, c in zip(responses, sets)] == [0.0, 0.0, 1.0]


def test_verify_batch_empty(server: Server) -> None:
    out = server.post("/verify_batch", {"responses": [], "constraints": NO_COMMA}).json()
    assert out == {"results": [], "rewards": []}


# --- bad input ------------------------------------------------------------------------------


def test_bad_json_is_400(server: Server) -> None:
    r = httpx.post(server.url + "/verify", content=b"{not json", timeout=10)
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]
    r = server.post("/verify", [1, 2])
    assert r.status_code == 400
    assert "JSON object" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"constraints": NO_COMMA}, 400, "response"),
        ({"response": 3, "constraints": NO_COMMA}, 400, "response"),
        ({"response": "x"}, 400, "constraints"),
        ({"response": "x", "constraints": [{"id": "no_such:thing"}]}, 422, "constraints"),
        ({"response": "x", "constraints": [{"nope": 1}]}, 422, "constraints"),
        (
            {"response": "x", "constraints": [{"id": "punctuation:no_comma", "kwargs": {"z": 1}}]},
            422,
            "constraints",
        ),
        ({"response": "x", "constraints": NO_COMMA, "mode": "lenient"}, 400, "mode"),
        ({"response": "x", "constraints": NO_COMMA, "reduce": "sum"}, 400, "reduce"),
        ({"response": "x", "constraints": NO_COMMA, "suite": 5}, 400, "suite"),
    ],
)
def test_bad_fields_name_the_field(server: Server, body: dict, status: int, field: str) -> None:
    r = server.post("/verify", body)
    assert r.status_code == status, r.text
    out = r.json()
    assert out["field"] == field
    assert f"'{field}'" in out["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"responses": "x", "constraints": NO_COMMA}, "responses"),
        ({"responses": ["x", 2], "constraints": NO_COMMA}, "responses[1]"),
        ({"responses": ["x", "y"], "constraints": [NO_COMMA, NO_COMMA, NO_COMMA]}, "constraints"),
        (
            {"responses": ["x", "y"], "constraints": [NO_COMMA, [{"id": "bad:id"}]]},
            "constraints[1]",
        ),
    ],
)
def test_bad_batch_fields_name_the_field(server: Server, body: dict, field: str) -> None:
    r = server.post("/verify_batch", body)
    assert r.status_code in (400, 422), r.text
    assert r.json()["field"] == field


def test_unknown_suite_is_422_naming_suite(server: Server) -> None:
    r = server.post("/verify", {"response": "x", "constraints": NO_COMMA, "suite": "nosuch"})
    assert r.status_code == 422
    assert r.json()["field"] == "suite"
    assert "unknown suite 'nosuch'" in r.json()["error"]


def test_wrong_method_and_route(server: Server) -> None:
    assert httpx.get(server.url + "/verify", timeout=10).status_code == 405
    assert httpx.post(server.url + "/nope", json={}, timeout=10).status_code == 404


# --- request size ---------------------------------------------------------------------------


def test_oversized_body_is_413(server: Server) -> None:
    body = {"response": "a" * (MAX_REQUEST_BYTES + 100), "constraints": NO_COMMA}
    r = server.post("/verify", body)
    assert r.status_code == 413
    assert "--max-request-bytes" in r.json()["error"]


def test_oversized_chunked_body_is_413(server: Server) -> None:
    """No Content-Length: the body is counted as it arrives."""

    def chunks() -> Iterator[bytes]:
        for _ in range(2 * MAX_REQUEST_BYTES // 4096):
            yield b" " * 4096

    r = httpx.post(server.url + "/verify_batch", content=chunks(), timeout=30)
    assert r.status_code == 413


def test_declared_size_is_refused_before_the_body_is_read(server: Server) -> None:
    """A Content-Length of 1 TB, and only a few bytes sent: the answer comes at once."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000000000000\r\n\r\n{"response": '
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_server_still_answers_after_refusals(server: Server) -> None:
    r = server.post("/verify", {"response": "fine", "constraints": NO_COMMA})
    assert r.json()["reward"] == 1.0


# --- concurrency ----------------------------------------------------------------------------


CONSTRAINT_SETS: list[list[dict[str, Any]]] = [
    NO_COMMA,
    UNDER_5_WORDS,
    [{"id": "change_case:english_lowercase", "kwargs": {}}],
    [{"id": "keywords:existence", "kwargs": {"keywords": ["apple"]}}],
    [{"id": "startend:end_checker", "kwargs": {"end_phrase": "Is there anything else?"}}],
    NO_COMMA
    + [
        {
            "id": "length_constraints:number_words",
            "kwargs": {"relation": "at least", "num_words": 8},
        }
    ],
]
WORDS = ["apple", "Banana", "cherry,", "date", "elder", "fig.", "grape", "Is", "there"]


def load_cases(n: int, seed: int = 0) -> list[tuple[str, list[dict[str, Any]], float]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14)))
        if rng.random() < 0.3:
            text += " Is there anything else?"
        constraints = rng.choice(CONSTRAINT_SETS)
        cases.append((text, constraints, expected(text, constraints)))
    return cases


async def _load(url: str, n: int, concurrency: int, batch_every: int = 10) -> dict[str, Any]:
    """``n`` requests, at most ``concurrency`` in flight; every ``batch_every``-th is a
    /verify_batch of 5 answers. Returns what came back and what was expected."""
    cases = load_cases(n)
    limit = asyncio.Semaphore(concurrency)
    got: list[Any] = [None] * n
    want: list[Any] = [None] * n

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with limit:
            if batch_every and i % batch_every == 0:
                group = [cases[(i + k) % n] for k in range(5)]
                body = {"responses": [g[0] for g in group], "constraints": [g[1] for g in group]}
                r = await client.post(url + "/verify_batch", json=body)
                want[i] = [g[2] for g in group]
                got[i] = r.json()["rewards"] if r.status_code == 200 else r.text
            else:
                text, constraints, score = cases[i]
                r = await client.post(
                    url + "/verify", json={"response": text, "constraints": constraints}
                )
                want[i] = score
                got[i] = r.json()["reward"] if r.status_code == 200 else r.text

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        before = (await client.get(url + "/health")).json()["pool_calls"]
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(n)))
        seconds = time.perf_counter() - t0
        after = (await client.get(url + "/health")).json()["pool_calls"]
    return {"got": got, "want": want, "seconds": seconds, "pool_calls": after - before}


def _check_load(server: Server, n: int, concurrency: int) -> dict[str, Any]:
    out = asyncio.run(_load(server.url, n, concurrency))
    wrong = [(i, g, w) for i, (g, w) in enumerate(zip(out["got"], out["want"])) if g != w]
    assert not wrong, f"{len(wrong)} of {n} answers wrong or missing, e.g. {wrong[:3]}"
    assert 0 < out["pool_calls"] <= n  # how many coalesced depends on timing: see below
    print(
        f"\nload: {n} requests, concurrency {concurrency}: {n / out['seconds']:.0f} req/s, "
        f"{out['pool_calls']} pool calls"
    )
    return out


def test_load_every_answer_correct(server: Server) -> None:
    _check_load(server, n=200, concurrency=16)


@pytest.mark.slow
def test_load_heavy(server: Server) -> None:
    _check_load(server, n=3000, concurrency=64)


def test_coalescer_merges_requests_waiting_for_the_pool() -> None:
    """While the pool scores one batch, the requests that arrive wait and then go to it as
    one batch; each gets its own results back, in order; scoring runs off the event loop."""
    import threading

    from ifharness.reward import RewardPool
    from ifharness.reward.coalesce import Coalescer
    from ifharness.reward.http_schema import Options

    release = threading.Event()
    calls: list[list[str]] = []

    class SlowPool:
        def reward_batch(self, responses: list[str], constraints: Any, **kw: Any) -> list:
            calls.append(list(responses))
            if len(calls) == 1:
                assert release.wait(10)
            with RewardPool(workers=0) as inline:
                return inline.reward_batch(responses, constraints, **kw)

    async def main() -> tuple[list, list]:
        c = Coalescer(SlowPool())  # type: ignore[arg-type]
        c.start()
        opts = Options(SUITE, "strict", "fraction")
        first = asyncio.ensure_future(c.score(["a, b"], [NO_COMMA], opts))
        while not calls:
            await asyncio.sleep(0.01)  # the loop runs while the pool is busy
        texts = [f"text {i}" + ("," if i % 2 else "") for i in range(10)]
        rest = [asyncio.ensure_future(c.score([t], [NO_COMMA], opts)) for t in texts]
        await asyncio.sleep(0.05)
        release.set()
        results = [await first] + [await f for f in rest]
        await c.close()
        return texts, results

    texts, results = asyncio.run(main())
    assert [len(x) for x in calls] == [1, 10]
    assert calls[1] == texts
    assert [r[0].score for r in results] == [0.0] + [0.0 if i % 2 else 1.0 for i in range(10)]


def test_coalescer_isolates_a_failing_request() -> None:
    """A request that makes the merged pool call fail fails alone."""
    from ifharness.reward.coalesce import Coalescer
    from ifharness.reward.http_schema import Options

    class Picky:
        def reward_batch(self, responses: list[str], constraints: Any, **kw: Any) -> list:
            if "boom" in responses:
                raise RuntimeError("boom")
            return [reward(r, c, **kw) for r, c in zip(responses, constraints)]

    async def main() -> list:
        c = Coalescer(Picky())  # type: ignore[arg-type]
        c.start()
        opts = Options(SUITE, "strict", "fraction")
        futures = [
            asyncio.ensure_future(c.score([t], [NO_COMMA], opts)) for t in ("ok", "boom", "a,b")
        ]
        out = await asyncio.gather(*futures, return_exceptions=True)
        await c.close()
        return out

    ok, boom, comma = asyncio.run(main())
    assert ok[0].score == 1.0 and comma[0].score == 0.0
    assert isinstance(boom, RuntimeError)


# --- in process, and without the extra -------------------------------------------------------


def test_app_in_process_owns_its_pool() -> None:
    """create_app without a pool makes one at startup and closes it at shutdown."""
    from starlette.testclient import TestClient

    from ifharness.reward.server import ServerSettings, create_app

    settings = ServerSettings(
        workers=1, suite=SUITE, max_chars=20, over_budget_score=-1.0, reasoning="none"
    )
    app = create_app(settings)
    with TestClient(app) as client:
        r = client.post("/verify", json={"response": "a, b", "constraints": NO_COMMA})
        assert r.json()["reward"] == 0.0
        long = client.post("/verify", json={"response": "x" * 21, "constraints": NO_COMMA})
        assert long.json()["over_budget"] is True
        assert long.json()["reward"] == -1.0
        think = client.post(
            "/verify", json={"response": "<think>,</think>ok", "constraints": NO_COMMA}
        )
        assert think.json()["reward"] == 0.0  # reasoning="none": the comma is in the answer
        assert client.get("/health").json()["reasoning"] == "none"
    assert app.state.pool_closed is True


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from ifharness.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve-reward", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'ifharness[reward-server]'" in err
    assert "uvicorn" in err


def test_port_in_use_is_a_plain_error(server: Server) -> None:
    port = server.url.rsplit(":", 1)[1]
    r = subprocess.run(
        [sys.executable, "-m", "ifharness.cli", "serve-reward", "--port", port, "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


def test_help_lists_the_flags() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ifharness.cli", "serve-reward", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--workers",
        "--timeout-s",
        "--max-chars",
        "--max-request-bytes",
        "--suite",
        "--mode",
        "--reduce",
    ):
        assert flag in r.stdout


def test_unknown_server_suite_is_a_plain_error() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ifharness.cli", "serve-reward", "--port", "0", "--suite", "nosuch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "--suite: unknown suite 'nosuch'" in r.stderr
