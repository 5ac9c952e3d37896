"""Backends by name: each one a module that registers itself, found without a list.

A backend is a name, a pydantic options model and a factory::

    from pydantic import Field
    from ifharness.runners.registry import BackendOptions, register_backend

    class EchoOptions(BackendOptions):
        shout: bool = Field(False, description="answer in capitals")
        delay: float = Field(0.0, ge=0, description="seconds to wait per request")

    @register_backend("echo", options=EchoOptions, summary="repeats the prompt")
    def echo(options: EchoOptions, run: RunContext, model: ModelRef, parser: Parser) -> Runner:
        from my_package.heavy import EchoRunner   # heavy imports here, when a run needs them
        return EchoRunner(options, parser)

From the options model the registry derives what ``ifharness run`` needs: one argument
group per backend (a field ``delay`` is the flag ``--delay``; a ``bool`` field is
``--shout`` when it defaults to False and ``--no-shout`` when it defaults to True; a
``Literal`` gives the choices; ``json_schema_extra={"metavar": "FILE"}`` names the value;
the description is the help, the default is appended), the backend's section of
``run.json`` (:meth:`BackendOptions.to_json`: never put a secret in an options model, only
the *name* of the variable that holds it) and validation (pydantic constraints; a broken
value is one :class:`IfharnessError` line naming the flag). A flag of another backend is
refused with the backend it belongs to. The same field name in two backends is one flag,
validated by whichever backend runs.

Optional hooks, each for what differs between backends:

* ``resolve_model(options, model, chat_template) -> ModelRef``: what ``--model`` names
  (default: a model folder or hub id, ``models.resolve``);
* ``default_parser``: the reasoning parser ``--reasoning-parser auto`` means (default:
  by model family);
* ``identity(options, model) -> dict``: what the backend adds to the run's identity, the
  settings a run folder is resumed under (default: ``{"backend": name}``);
* ``require() -> None``: raise :class:`IfharnessError` saying what to install when the
  backend cannot run here; called before anything is written.

Where backends come from: every module of the ``ifharness.runners`` package (imported
on first use of the registry; modules register cheaply and import their engines inside
the factory or the runner's methods), then the entry point group ``ifharness.backends``
of installed distributions. An entry point names a module that registers on import, or
a callable that registers when called (or returns a :class:`Backend` to register)::

    [project.entry-points."ifharness.backends"]
    echo = "my_package.echo_backend"

A broken entry point is skipped with a warning; the built-in backends still work.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from ..errors import IfharnessError

if TYPE_CHECKING:
    from ..models import ModelRef
    from ..reasoning import Parser
    from .base import Runner

ENTRY_POINT_GROUP = "ifharness.backends"
DEFAULT_BACKEND = "vllm"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_NOT_BACKENDS = {"base", "registry"}  # modules of ifharness.runners that register nothing


class BackendOptions(BaseModel):
    """Base of every backend's options: frozen, unknown names refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The backend's section of run.json."""
        return self.model_dump(mode="json")


OptionsT = TypeVar("OptionsT", bound=BackendOptions)


class RunContext(Protocol):
    """What a factory may read of the run besides its own options (``run.RunConfig``)."""

    seed: int
    n: int
    chat_template: str | None  # the --chat-template file; its text is on the ModelRef
    chat_template_kwargs: dict[str, Any]
    engine_args: dict[str, Any]


@dataclass(frozen=True)
class Backend(Generic[OptionsT]):
    name: str
    options: type[OptionsT]
    factory: Callable[[OptionsT, RunContext, ModelRef, Parser], Runner]
    summary: str = ""
    resolve_model: Callable[[OptionsT, str | None, str | None], ModelRef] | None = None
    default_parser: str | None = None
    identity: Callable[[OptionsT, ModelRef], dict[str, Any]] | None = None
    require: Callable[[], None] | None = None
    module: str = ""  # where it was registered, for messages

    def parse_options(self, given: BackendOptions | Mapping[str, Any] | None = None) -> OptionsT:
        """The validated options: an instance passes through, a mapping (or None: the
        defaults) is validated, with one error line naming each broken flag."""
        if isinstance(given, self.options):
            return given
        if isinstance(given, BackendOptions):
            raise IfharnessError(
                f"{type(given).__name__} are not options of the {self.name} backend"
            )
        try:
            return self.options.model_validate(dict(given or {}))
        except ValidationError as e:
            raise IfharnessError(_explain(self, e)) from None

    def make_runner(
        self, options: OptionsT, run: RunContext, model: ModelRef, parser: Parser
    ) -> Runner:
        return self.factory(options, run, model, parser)

    def model_ref(
        self, options: OptionsT, model: str | None, chat_template: str | None
    ) -> ModelRef:
        if self.resolve_model is not None:
            return self.resolve_model(options, model, chat_template)
        from .. import models

        return models.resolve(model, chat_template)

    def identity_of(self, options: OptionsT, model: ModelRef) -> dict[str, Any]:
        if self.identity is not None:
            return self.identity(options, model)
        return {"backend": self.name}

    def check_available(self) -> None:
        if self.require is not None:
            self.require()


# ----------------------------------------------------------------------------- the table

_BACKENDS: dict[str, Backend[Any]] = {}
_loaded = False


def register(backend: Backend[Any]) -> Backend[Any]:
    """Add a backend; a name may be registered once."""
    if not _NAME.match(backend.name):
        raise IfharnessError(
            f"backend name {backend.name!r}: use lower-case letters, digits, "
            "'-' and '_', starting with a letter"
        )
    if not (isinstance(backend.options, type) and issubclass(backend.options, BackendOptions)):
        raise IfharnessError(
            f"backend {backend.name!r}: options must be a subclass of "
            "ifharness.runners.registry.BackendOptions"
        )
    if backend.name in _BACKENDS:
        raise IfharnessError(
            f"backend {backend.name!r} is registered twice (by "
            f"{_BACKENDS[backend.name].module or '?'} and "
            f"{backend.module or '?'}); rename one"
        )
    _BACKENDS[backend.name] = backend
    return backend


def register_backend(
    name: str,
    *,
    options: type[OptionsT],
    summary: str = "",
    resolve_model: Callable[[OptionsT, str | None, str | None], ModelRef] | None = None,
    default_parser: str | None = None,
    identity: Callable[[OptionsT, ModelRef], dict[str, Any]] | None = None,
    require: Callable[[], None] | None = None,
) -> Callable[
    [Callable[[OptionsT, RunContext, ModelRef, Parser], Runner]],
    Callable[[OptionsT, RunContext, ModelRef, Parser], Runner],
]:
    """Decorator: register the decorated factory as backend ``name`` (see the module doc)."""

    def decorate(
        factory: Callable[[OptionsT, RunContext, ModelRef, Parser], Runner],
    ) -> Callable[[OptionsT, RunContext, ModelRef, Parser], Runner]:
        register(
            Backend(
                name,
                options,
                factory,
                summary,
                resolve_model,
                default_parser,
                identity,
                require,
                getattr(factory, "__module__", ""),
            )
        )
        return factory

    return decorate


def unregister_backend(name: str) -> None:
    """Remove a backend (tests; a plugin replacing another's name)."""
    _BACKENDS.pop(name, None)


@contextmanager
def temporary_backends() -> Iterator[None]:
    """Whatever is registered inside the block is gone after it (the table is restored)."""
    _load()
    saved = dict(_BACKENDS)
    try:
        yield
    finally:
        _BACKENDS.clear()
        _BACKENDS.update(saved)


def get_backend(name: str) -> Backend[Any]:
    _load()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise IfharnessError(
            f"unknown backend {name!r}: the backends are {', '.join(backend_names())}"
        ) from None


def backend_names() -> list[str]:
    """Registered names, the default first, then in the order they were registered."""
    _load()
    return sorted(_BACKENDS, key=lambda n: n != DEFAULT_BACKEND)


def all_backends() -> list[Backend[Any]]:
    return [_BACKENDS[n] for n in backend_names()]


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import __path__ as package_path

    for info in sorted(pkgutil.iter_modules(package_path), key=lambda m: m.name):
        if info.name not in _NOT_BACKENDS and not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")
    load_entry_points()


def load_entry_points() -> None:
    """Import (or call) each ``ifharness.backends`` entry point once; warn on a broken one."""
    seen: set[tuple[str, str]] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) in seen:
            continue  # the same distribution found twice on sys.path
        seen.add((ep.name, ep.value))
        try:
            target = ep.load()
            if callable(target) and not isinstance(target, types.ModuleType):
                made = target()
                if isinstance(made, Backend) and _BACKENDS.get(made.name) is not made:
                    register(made)
        except Exception as e:  # noqa: BLE001 - someone else's package must not stop ours
            dist = getattr(ep, "dist", None)
            where = f" (from {dist.name} {dist.version})" if dist is not None else ""
            warnings.warn(
                f"ifharness: backend entry point {ep.name} = {ep.value}{where} was "
                f"skipped: {type(e).__name__}: {e}",
                RuntimeWarning,
                stacklevel=2,
            )


# ----------------------------------------------------------------------------- the CLI


def flag(field_name: str, info: FieldInfo) -> str:
    """The command-line flag of an options field."""
    dashed = field_name.replace("_", "-")
    if info.annotation is bool and info.default is True:
        return f"--no-{dashed}"
    return f"--{dashed}"


def _dest(field_name: str) -> str:
    return f"backend_option__{field_name}"


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """One argument group per backend, from its options model. Values default to "not
    given" (argparse.SUPPRESS), so :func:`options_from_args` sees only what was typed."""
    added: set[str] = set()
    for b in all_backends():
        group = parser.add_argument_group(
            f"{b.name} backend" + (f" ({b.summary})" if b.summary else "")
        )
        for name, info in b.options.model_fields.items():
            if name in added:
                continue  # the same option of another backend: one flag for both
            try:
                group.add_argument(
                    flag(name, info),
                    dest=_dest(name),
                    default=argparse.SUPPRESS,
                    **_argparse_kwargs(name, info),
                )
            except argparse.ArgumentError as e:
                warnings.warn(
                    f"ifharness: option {name!r} of the {b.name} backend has no flag: {e}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            added.add(name)


def options_from_args(args: argparse.Namespace, backend: str) -> BackendOptions:
    """The chosen backend's validated options from the flags given; a flag of another
    backend is an error naming the backend(s) it belongs to."""
    chosen = get_backend(backend)
    mine = chosen.options.model_fields
    given: dict[str, Any] = {}
    for b in all_backends():
        for name, info in b.options.model_fields.items():
            if not hasattr(args, _dest(name)):
                continue
            if name in mine:
                given[name] = getattr(args, _dest(name))
                continue
            owners = [o.name for o in all_backends() if name in o.options.model_fields]
            raise IfharnessError(
                f"{flag(name, info)} belongs to the {' and '.join(owners)} backend"
                f"{'s' if len(owners) > 1 else ''}; it does nothing with --backend {backend}"
            )
    return chosen.parse_options(given)


def _argparse_kwargs(name: str, info: FieldInfo) -> dict[str, Any]:
    help_text = info.description or ""
    annotation = _strip_optional(info.annotation)
    if annotation is bool:
        if info.default is True:
            return {"action": "store_false", "help": f"turn off: {help_text}".strip(": ")}
        return {"action": "store_true", "help": help_text}
    kwargs: dict[str, Any] = {"metavar": name.upper()}
    if get_origin(annotation) is Literal:
        kwargs["choices"] = list(get_args(annotation))
        kwargs["type"] = type(kwargs["choices"][0])
        del kwargs["metavar"]  # argparse shows the choices
    elif annotation in (int, float, str):
        kwargs["type"] = annotation
    else:
        kwargs["type"] = _json_or_text  # lists, dicts, paths: pydantic takes it from here
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("metavar"), str):
        kwargs["metavar"] = extra["metavar"]
    if not info.is_required() and info.default is not None:
        shown = f"{info.default:g}" if isinstance(info.default, float) else info.default
        help_text = f"{help_text} (default {shown})".strip()
    kwargs["help"] = help_text
    return kwargs


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _explain(backend: Backend[Any], error: ValidationError) -> str:
    """Pydantic's errors as one line, in the flags' words."""
    fields = backend.options.model_fields
    parts = []
    for err in error.errors():
        loc = err.get("loc") or ()
        name = str(loc[0]) if loc else ""
        info = fields.get(name)
        where = (
            flag(name, info)
            if info is not None
            else (f"--{name.replace('_', '-')}" if name else "")
        )
        ctx = err.get("ctx") or {}
        got = err.get("input")
        kind = err["type"]
        if not where:
            parts.append(f"--backend {backend.name}: {_message(err)}")
        elif kind == "missing":
            hint = f": {info.description}" if info is not None and info.description else ""
            parts.append(f"--backend {backend.name} needs {where}{hint}")
        elif kind == "extra_forbidden":
            parts.append(f"{where} is not an option of the {backend.name} backend")
        elif kind in _BOUNDS:
            word, key = _BOUNDS[kind]
            parts.append(f"{where} must be {word} {_number(ctx.get(key))} (got {_number(got)})")
        elif kind == "literal_error":
            parts.append(f"{where} must be {ctx.get('expected')} (got {got!r})")
        else:
            parts.append(f"{where} {got}: {_message(err)}")
    return "; ".join(parts)


_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _number(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float) else value


def _message(err: Any) -> str:
    ctx = err.get("ctx") or {}
    if err["type"] in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return str(err["msg"])
