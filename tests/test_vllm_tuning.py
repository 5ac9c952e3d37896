"""The vllm runner's choices for a CPU machine (``ifharness.runners.vllm_tuning``) and the
progress display, without an engine."""

from __future__ import annotations

import io

from ifharness.runners.base import Progress
from ifharness.runners.vllm_tuning import (
    GIB,
    available_memory,
    choose_cpu_dtype,
    cpu_flags,
    kv_bytes_per_token,
    kv_tokens_for,
    plan_cpu_engine,
    size_kv_cache,
)

AVX2_ONLY = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SPR = "processor\t: 0\nflags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8\n"
SMOLLM2 = {
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "hidden_size": 576,
    "max_position_embeddings": 8192,
    "dtype": "bfloat16",
}
MEMINFO = "MemTotal:       24683520 kB\nMemAvailable:   20971520 kB\n"  # 20 GiB available


def test_dtype_follows_native_bf16():
    assert cpu_flags(AVX2_ONLY) == {"fpu", "sse", "sse2", "avx", "avx2", "fma"}
    no_bf16 = choose_cpu_dtype(cpu_flags(AVX2_ONLY), "bfloat16")
    assert no_bf16.value == "float32" and "no native bf16" in no_bf16.why
    assert choose_cpu_dtype(cpu_flags(ZEN4), "bfloat16").value == "bfloat16"
    amx = choose_cpu_dtype(cpu_flags(SPR), "bfloat16")
    assert amx.value == "bfloat16" and "amx_bf16" in amx.why
    assert choose_cpu_dtype(cpu_flags(ZEN4), "float32").value == "float32"
    assert choose_cpu_dtype(set(), "bfloat16").value == "auto"


def test_user_dtype_wins(tmp_path):
    plan = plan_cpu_engine(str(tmp_path), None, {"dtype": "bfloat16"}, {}, cpuinfo=AVX2_ONLY)
    assert "dtype" not in plan.kwargs and plan.choices["dtype"].value == "bfloat16"
    plan = plan_cpu_engine(str(tmp_path), None, {}, {}, cpuinfo=AVX2_ONLY, meminfo="", cores=2)
    assert plan.kwargs["dtype"] == "float32"


def test_kv_bytes_per_token():
    # K and V, 30 layers x 3 kv heads x 64: 11520 values a token
    assert kv_bytes_per_token(SMOLLM2, "float32") == 11520 * 4
    assert kv_bytes_per_token(SMOLLM2, "bfloat16") == 11520 * 2
    no_head_dim = {k: v for k, v in SMOLLM2.items() if k != "head_dim"}
    assert kv_bytes_per_token(no_head_dim, "bfloat16") == 11520 * 2  # 576 / 9 = 64
    assert kv_bytes_per_token({"text_config": SMOLLM2}, "bfloat16") == 11520 * 2
    assert kv_bytes_per_token({}, "bfloat16") is None


def test_kv_cache_sized_for_the_work():
    # 130 answers of a 100-token prompt + 512 new tokens: 612 -> 624 in blocks of 16
    work = [(100, 512, 1)] * 130
    assert kv_tokens_for(work, 256) == 130 * 624
    assert kv_tokens_for(work, 64) == 64 * 624  # only max_num_seqs at once
    assert kv_tokens_for([(10, 6, 3)], 256) == 3 * 16  # n samples are sequences each
    per = 11520 * 4
    choice = size_kv_cache(130 * 624, per, 8192, 20 * GIB)
    assert choice.value == int(130 * 624 * per * 1.2)
    assert "81120 tokens in flight" in choice.why
    small = size_kv_cache(16 * 10, per, 2048, 20 * GIB)
    assert small.value == GIB and "raised" in small.why  # at least 1 GiB
    capped = size_kv_cache(10**7, per, 8192, 4 * GIB)
    assert capped.value == 2 * GIB and "capped" in capped.why  # half of what is available
    assert available_memory(MEMINFO) == 20 * GIB


def test_plan_records_each_choice(tmp_path):
    import json

    (tmp_path / "config.json").write_text(json.dumps(SMOLLM2))
    work = [(100, 512, 1)] * 130
    plan = plan_cpu_engine(str(tmp_path), work, {}, {}, cpuinfo=AVX2_ONLY, meminfo=MEMINFO, cores=2)
    assert plan.kwargs["dtype"] == "float32"
    assert plan.kwargs["kv_cache_memory_bytes"] == int(130 * 624 * 11520 * 4 * 1.2)
    assert plan.env == {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    described = plan.describe()
    assert set(described) == {"dtype", "threads", "max_num_seqs", "kv_cache_bytes"}
    assert all(d["why"] for d in described.values())
    # the user's settings are kept, and said to be theirs
    theirs = plan_cpu_engine(
        str(tmp_path),
        work,
        {"kv_cache_memory_bytes": 5 * GIB, "max_num_seqs": 8},
        {"VLLM_CPU_OMP_THREADS_BIND": "0"},
        cpuinfo=ZEN4,
        meminfo=MEMINFO,
    )
    assert theirs.kwargs == {"dtype": "bfloat16"} and theirs.env == {}
    assert theirs.choices["kv_cache_bytes"].value == 5 * GIB
    assert theirs.choices["max_num_seqs"].value == 8
    env_kv = plan_cpu_engine(str(tmp_path), work, {}, {"VLLM_CPU_KVCACHE_SPACE": "3"}, cpuinfo=ZEN4)
    assert "kv_cache_memory_bytes" not in env_kv.kwargs
    assert env_kv.choices["kv_cache_bytes"].value == 3 * GIB
    # a bf16 cache is half the bytes
    bf16 = plan_cpu_engine(str(tmp_path), work, {}, {}, cpuinfo=ZEN4, meminfo=MEMINFO)
    assert bf16.kwargs["kv_cache_memory_bytes"] == int(130 * 624 * 11520 * 2 * 1.2)


# ----------------------------------------------------------------------------- progress


def test_progress_prints_sparse_plain_lines_off_a_terminal():
    buf = io.StringIO()
    p = Progress(total=100, stream=buf, every_pct=10, every_s=3600)
    p.restart_clock()
    for _ in range(100):
        p.tick(1, 50)  # one answer finished in the engine
    p.advance(64, 64 * 50)  # its chunk written: counted once
    p.advance(36, 36 * 50)
    p.finish()
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue() and "\x1b" not in buf.getvalue()
    assert 10 <= len(lines) <= 12  # every 10 %, not every answer
    assert lines[0].startswith("generating 1/100 (  1%)")
    assert lines[-1].startswith("generating 100/100 (100%)")
    assert "answers/s" in lines[-1] and "tok/s" in lines[-1] and "eta" not in lines[-1]
    assert "eta" in lines[3]


def test_progress_counts_resumed_answers_but_not_their_rate():
    buf = io.StringIO()
    p = Progress(total=10, done=4, stream=buf)
    p.restart_clock()
    p.tick(1, 10)
    assert p.shown == 5
    p.advance(2, 20)  # the ticked answer and one more, written
    assert p.shown == 6 and p.shown_tokens == 20
    assert "6/10" in buf.getvalue().splitlines()[-1]


def test_engine_log_goes_to_the_run_folder_unless_verbose(tmp_path):
    from types import SimpleNamespace

    from ifharness.run import RunConfig, _prepare_runner
    from ifharness.rundir import RunFolder
    from ifharness.runners.base import Request, SamplingSettings

    planned: list[list[Request]] = []
    runner = SimpleNamespace(options=SimpleNamespace(log_path=None), plan=planned.append)
    reqs = [Request(k, [], SamplingSettings(max_tokens=8)) for k in range(3)]
    folder = RunFolder(tmp_path / "run")
    path = _prepare_runner(runner, reqs, {"1"}, folder, RunConfig())  # type: ignore[arg-type]
    assert path == folder.engine_log_path and runner.options.log_path == str(path)
    assert [r.key for r in planned[0]] == [0, 2]  # only what is still to generate
    runner.options.log_path = None
    assert _prepare_runner(runner, reqs, set(), folder, RunConfig(verbose=True)) is None  # type: ignore[arg-type]
    assert runner.options.log_path is None
