"""The constraint registry: one decorated function per constraint id.

The function's signature *is* its kwargs schema. ``@constraint`` turns the parameters after
the first (the ``Text``) into a pydantic model, so malformed kwargs are rejected when a task
is loaded, never in the middle of a run.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import random
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Mapping, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .profiles import REFERENCE, Profile
from .relations import SYMBOL
from .text import Text

Prepare = Callable[[dict[str, Any], random.Random, Profile], dict[str, Any]]


class KwargsError(ValueError):
    """Kwargs that do not fit a constraint's signature."""


class UnknownConstraintError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class ResourceUnavailable(RuntimeError):
    """A checker needs a resource (a model, a data file) that is not installed here.

    Raised from inside a checker, never at import. The scorer records the instruction as
    unscorable with this message, so the message says what is missing and how to install it.
    """


class ReferenceCrash(RuntimeError):
    """The reference scorer raises on this input, so there is no reference verdict to match.

    Checkers raise it where the reference implementation would crash (and abort its whole run);
    the scorer records the instruction as unscorable instead, with this message.
    """


@dataclass(frozen=True)
class Constraint:
    id: str
    family: str
    suite: str
    func: Callable[..., bool]
    kwargs_model: type[BaseModel]
    instruction: str
    pseudo: str | None
    prepare: Prepare | None

    @property
    def kwargs_schema(self) -> dict[str, Any]:
        return self.kwargs_model.model_json_schema().get("properties", {})

    @property
    def signature(self) -> str:
        """The kwargs as the function declares them, e.g. ``num_words: int, relation: …``."""
        params = list(inspect.signature(self.func, eval_str=True).parameters.values())[1:]
        return ", ".join(_describe(p) for p in params)

    def validate(self, kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Checked kwargs; ``None`` values (HF's padded union schema) are dropped first."""
        given = {k: v for k, v in (kwargs or {}).items() if v is not None}
        try:
            model = self.kwargs_model.model_validate(given)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(kwargs)'}: {err['msg']}"
                for err in e.errors()
            )
            raise KwargsError(f"{self.id}: {problems}") from None
        return {name: getattr(model, name) for name in self.kwargs_model.model_fields}

    def bind(
        self, kwargs: Mapping[str, Any] | None, rng: random.Random | None = None,
        profile: Profile = REFERENCE,
    ) -> dict[str, Any]:
        """Validated kwargs after the constraint's set-up step (the reference's build step)."""
        bound = self.validate(kwargs)
        if self.prepare is not None:
            bound = self.prepare(bound, rng or random.Random(0), profile)
        return bound

    def __call__(self, text: Text | str, **kwargs: Any) -> bool:
        """Check one text (strict mode, no blank-response rule). Kwargs must be bound."""
        return self.func(text if isinstance(text, Text) else Text(text), **kwargs)

    def render(self, kwargs: Mapping[str, Any], pseudo: bool = False) -> str:
        """The instruction in words (or, with ``pseudo``, as code) for bound ``kwargs``."""
        template = self.pseudo if pseudo and self.pseudo else self.instruction
        ops = {"op": SYMBOL[v] for k, v in kwargs.items() if k.endswith("relation") and v in SYMBOL}
        return template.format(**{**ops, **kwargs})


def _describe(p: inspect.Parameter) -> str:
    ann = p.annotation
    if get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    if get_origin(ann) is Literal:
        kind = "|".join(repr(a) for a in get_args(ann))
    else:
        kind = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
        if get_args(ann):
            kind = str(ann).replace("typing.", "")
    optional = "" if p.default is inspect.Parameter.empty else f" = {p.default!r}"
    return f"{p.name}: {kind}{optional}"


REGISTRY: dict[str, Constraint] = {}

_SUITE_PACKAGES = ("ifeval", "ifbench")
_loaded = False


def constraint(
    id: str, *, instruction: str, pseudo: str | None = None, prepare: Prepare | None = None
) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    """Register ``func`` as the verifier of constraint ``id`` (``family:name``)."""

    def register(func: Callable[..., bool]) -> Callable[..., bool]:
        if id in REGISTRY:
            raise ValueError(f"constraint {id!r} registered twice ({func.__module__})")
        params = list(inspect.signature(func, eval_str=True).parameters.values())[1:]
        fields: dict[str, Any] = {
            p.name: (p.annotation, ... if p.default is inspect.Parameter.empty else p.default)
            for p in params
        }
        model = create_model(
            f"{func.__name__}_kwargs", __config__=ConfigDict(extra="forbid"), **fields
        )
        module_parts = func.__module__.split(".")
        suite = next((p for p in module_parts if p in _SUITE_PACKAGES), module_parts[-1])
        REGISTRY[id] = Constraint(
            id=id, family=id.split(":", 1)[0], suite=suite, func=func, kwargs_model=model,
            instruction=instruction, pseudo=pseudo, prepare=prepare,
        )
        return func

    return register


def load_all() -> dict[str, Constraint]:
    """Import every suite module once, so their decorators have run."""
    global _loaded
    if not _loaded:
        for suite in _SUITE_PACKAGES:
            try:
                package = importlib.import_module(f"{__package__}.{suite}")
            except ModuleNotFoundError as e:
                if e.name != f"{__package__}.{suite}":
                    raise
                continue
            for info in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{package.__name__}.{info.name}")
        _loaded = True
    return REGISTRY


def get(id: str) -> Constraint:
    registry = load_all()
    try:
        return registry[id]
    except KeyError:
        close = difflib.get_close_matches(id, list(registry), n=1, cutoff=0.8)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownConstraintError(
            f"unknown constraint id {id!r}.{hint} `ifharness constraints` lists them all."
        ) from None


def check(id: str, text: str | Text, **kwargs: Any) -> bool:
    """Check one constraint on one text in strict mode: the RL reward-function entry point.

    A blank text never follows an instruction (reference rule).
    """
    c = get(id)
    t = text if isinstance(text, Text) else Text(text)
    return not t.is_blank and c(t, **c.bind(kwargs))


def _register_suite_profiles() -> None:
    """Import each suite package's ``__init__`` (not its checker modules).

    A suite registers its named, versioned profiles there (``ifbench-2025`` for one), so a
    profile name resolves as soon as the registry is imported, before any checker is loaded.
    The ``__init__`` modules are kept light for this reason: flags and profiles only.
    """
    for suite in _SUITE_PACKAGES:
        try:
            importlib.import_module(f"{__package__}.{suite}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{suite}":
                raise


_register_suite_profiles()
