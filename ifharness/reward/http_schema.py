"""The JSON of ``ifharness serve-reward``: request bodies read and checked, results shaped.

Why it is its own module: the server's contract with its clients (NeMo-Gym's ``/verify`` row,
``/verify_batch``, OpenRLHF's remote reward model body) is plain data in, plain data out, and
can be read and tested without Starlette, uvicorn or a pool. Every refusal is a
:class:`RequestError` carrying its HTTP status and the field it names; the server turns it
into the response. Bodies are read incrementally and refused with 413 as soon as they pass the
server's limit (at once when Content-Length says so). A field a request leaves out takes the
server's value, passed in as ``defaults`` (an :class:`Options`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

    from . import RewardResult

MODES = ("strict", "loose")
ID_KEYS = ("instruction_id", "instruction_id_list")
REDUCTIONS = ("fraction", "all")


class RequestError(Exception):
    """A request the server refuses: HTTP status, a message naming the field, the field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise RequestError(413, _too_large(f"{size} bytes", limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, _too_large(f"over {limit} bytes", limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(what: str, limit: int) -> str:
    return (
        f"request body is {what}; this server takes at most {limit} bytes "
        "(--max-request-bytes); send smaller batches"
    )


def parse_json_object(raw: bytes, route: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise RequestError(400, f"{route}: the body is not valid JSON ({e})") from None
    if not isinstance(body, dict):
        raise RequestError(
            400, f"{route}: the body must be a JSON object, got {type(body).__name__}"
        )
    return body


@dataclass(frozen=True)
class Options:
    """The scoring options one request asks for (the server's unless the body overrides)."""

    suite: str | None
    mode: str
    reduce: str


def parse_options(body: dict[str, Any], defaults: Options) -> Options:
    """The request's ``suite``, ``mode`` and ``reduce``, each ``defaults``' unless given."""
    suite = body.get("suite", defaults.suite)
    if suite is not None and not isinstance(suite, str):
        raise RequestError(400, "field 'suite': must be a string (a suite name) or null", "suite")
    if suite is not None and suite != defaults.suite:
        try:
            check_suite(suite)
        except ValueError as e:
            raise RequestError(422, f"field 'suite': {e}", "suite") from None
    mode = body.get("mode", defaults.mode)
    if mode not in MODES:
        raise RequestError(400, f"field 'mode': must be one of {', '.join(MODES)}", "mode")
    reduce = body.get("reduce", defaults.reduce)
    if reduce not in REDUCTIONS:
        raise RequestError(400, f"field 'reduce': must be one of {', '.join(REDUCTIONS)}", "reduce")
    return Options(suite, mode, reduce)


def check_suite(suite: str) -> None:
    """ValueError (the registry's message) unless ``suite`` is an installed suite."""
    from ifharness.verifiers import UnknownSuiteError, require_suite

    try:
        require_suite(suite)
    except UnknownSuiteError as e:
        raise ValueError(e.args[0] if e.args else str(e)) from None


def check_constraints(value: Any, name: str, suite: str | None) -> None:
    """422 naming ``name`` when ``value`` is not a constraint list the scorer can use."""
    from . import ConstraintsError, parse_constraints

    try:
        parse_constraints(value, suite=suite)
    except ConstraintsError as e:
        hint = " (here: the request's 'suite' field, or --suite)" if "suite=" in str(e) else ""
        raise RequestError(422, f"field '{name}': {e}{hint}", name) from None
    except KeyError as e:  # an unknown suite or constraint id carries its own message
        raise RequestError(422, f"field '{name}': {e.args[0] if e.args else e}", name) from None


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        got = "missing" if value is None else f"got {type(value).__name__}"
        raise RequestError(400, f"field '{name}': must be a string (the answer text), {got}", name)
    return value


def response_text(value: Any, name: str = "response") -> str:
    """The answer text: a string, or an OpenAI Responses object as NeMo-Gym sends it (the
    text parts of its last output item that has content)."""
    if not isinstance(value, dict):
        return _text(value, name)
    output = value.get("output")
    if not isinstance(output, list):
        raise RequestError(
            400,
            f"field '{name}': must be a string, or a Responses object with an 'output' list",
            name,
        )
    for item in reversed(output):
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, list) and content:
            return "".join(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return ""


def parse_single(body: dict[str, Any], defaults: Options) -> tuple[str, Any, Options]:
    """``/verify``'s response, constraints and options (validated)."""
    options = parse_options(body, defaults)
    response = response_text(body.get("response"))
    if "constraints" in body:
        constraints = body["constraints"]
    elif "instruction_id_list" in body:  # a NeMo-Gym / IFEval row, as it is
        constraints = {k: body[k] for k in ("instruction_id_list", "kwargs") if k in body}
    else:
        raise RequestError(
            400,
            'field \'constraints\': missing (a list of {"id", "kwargs"}, or '
            '{"instruction_id_list", "kwargs"})',
            "constraints",
        )
    check_constraints(constraints, "constraints", options.suite)
    return response, constraints, options


def _is_set_per_response(value: Any) -> bool:
    """Whether ``value``, a list, holds one constraint set per response: every element is a
    set itself (a list of constraints, a label string, an ``instruction_id_list`` dict), not a
    constraint (``{"id", "kwargs"}`` or an ``(id, kwargs)`` pair)."""

    def is_set(v: Any) -> bool:
        if isinstance(v, str):
            return True
        if isinstance(v, dict):
            return any(k in v for k in ID_KEYS)
        if isinstance(v, list):
            pair = (
                len(v) == 2 and isinstance(v[0], str) and (v[1] is None or isinstance(v[1], dict))
            )
            return not pair
        return False

    return isinstance(value, list) and bool(value) and all(is_set(v) for v in value)


def parse_batch(body: dict[str, Any], defaults: Options) -> tuple[list[str], list[Any], Options]:
    """``/verify_batch``'s responses, one constraint set per response, and options."""
    options = parse_options(body, defaults)
    responses = body.get("responses")
    if not isinstance(responses, list):
        raise RequestError(400, "field 'responses': must be a list of strings", "responses")
    texts = [_text(r, f"responses[{i}]") for i, r in enumerate(responses)]
    if "constraints" not in body:
        raise RequestError(
            400,
            "field 'constraints': missing (one constraint set for all responses, or a list "
            "with one per response)",
            "constraints",
        )
    value = body["constraints"]
    if not _is_set_per_response(value) or (len(value) == 1 and len(texts) != 1):
        # one set for all (a one-element list of sets is an RL label: that set)
        check_constraints(value, "constraints", options.suite)
        per_response = [value] * len(texts)
    else:
        if len(value) != len(texts):
            raise RequestError(
                400,
                f"field 'constraints': {len(value)} constraint sets for {len(texts)} responses "
                "(give one per response, or a single set for all)",
                "constraints",
            )
        for i, c in enumerate(value):
            check_constraints(c, f"constraints[{i}]", options.suite)
        per_response = list(value)
    return texts, per_response, options


def result_json(result: RewardResult) -> dict[str, Any]:
    """NeMo-Gym's three names first, then everything RewardResult records."""
    out: dict[str, Any] = {
        "reward": result.score,
        "follow_all_instructions": result.followed_all,
        "follow_instruction_list": [v.followed for v in result.verdicts],
    }
    out.update(result.to_dict())
    return out


def parse_openrlhf(body: dict[str, Any], defaults: Options) -> tuple[list[str], list[Any], Options]:
    """OpenRLHF's remote reward model request ``{"query", "prompts", "labels"}`` (lists of one
    value per sample): the responses (each query with its prompt cut off, as its
    ``reward_func`` does), one label per response, and options."""
    from .openrlhf import response_of

    options = parse_options(body, defaults)
    queries = body.get("query", body.get("queries"))
    if not isinstance(queries, list):
        raise RequestError(
            400, "field 'query': must be a list of strings (prompt + response)", "query"
        )
    texts = [_text(q, f"query[{i}]") for i, q in enumerate(queries)]
    prompts = body.get("prompts")
    if prompts is None:
        prompts = [None] * len(texts)
    if not isinstance(prompts, list) or len(prompts) != len(texts):
        raise RequestError(
            400,
            f"field 'prompts': must be a list with one prompt per query ({len(texts)})",
            "prompts",
        )
    for i, p in enumerate(prompts):
        if p is not None and not isinstance(p, str):
            raise RequestError(400, f"field 'prompts[{i}]': must be a string", f"prompts[{i}]")
    labels = body.get("labels")
    if not isinstance(labels, list) or len(labels) != len(texts):
        raise RequestError(
            400,
            f"field 'labels': must be a list with one label (constraints) per query ({len(texts)})",
            "labels",
        )
    for i, label in enumerate(labels):
        check_constraints(label, f"labels[{i}]", options.suite)
    responses = [response_of(q, p) for q, p in zip(texts, prompts)]
    return responses, labels, options


def openrlhf_json(results: list[RewardResult]) -> dict[str, Any]:
    """OpenRLHF's remote reward model answer ``{"rewards", "scores", "extra_logs"}``: the same
    as its ``reward_func`` returns."""
    from ._adapter import summary

    rows = [summary(r) for r in results]
    scores = [r["score"] for r in rows]
    logs = ("followed_all", "over_budget", "num_followed", "num_constraints")
    return {
        "rewards": scores,
        "scores": scores,
        "extra_logs": {key: [float(r[key]) for r in rows] for key in logs},
    }


__all__ = [
    "Options",
    "RequestError",
    "check_suite",
    "openrlhf_json",
    "parse_batch",
    "parse_json_object",
    "parse_openrlhf",
    "parse_single",
    "read_body",
    "result_json",
]
