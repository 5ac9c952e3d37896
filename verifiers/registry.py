"""The constraint registry: one decorated function per constraint id, per suite.

The function's signature *is* its kwargs schema. ``@constraint`` turns the parameters after
the first (the ``Text``) into a pydantic model, so malformed kwargs are rejected when a task
is loaded, never in the middle of a run.

Suites are namespaces. A constraint id is unique within its suite, not across suites, so
the registry is keyed by ``(suite, id)``. A task names its suite and every lookup of its
ids happens there; a bare id (``check("punctuation:no_comma", …)``) resolves when exactly
one suite defines it, or when every suite that defines it uses the same checker (same function,
same ``prepare``: IFEvalG re-registers IFEval's 25 checkers), to the suite that defined it
first; otherwise the error names the suites whose checkers differ. A suite whose package
says ``BARE_IDS = False`` (ReasonIF: IFEval's ids with other meanings, for traces) takes no
part in bare lookups of ids another suite also defines: it answers only when named.

Suites are discovered, never listed by hand:

* every package under ``ifharness.verifiers`` (``ifeval/``, ``ifbench/``, …) is a suite of
  that name; a ``@constraint`` in one of its modules belongs to it unless ``suite=`` says
  otherwise. The package's ``__init__`` is imported early (it registers the suite's
  profiles) and is kept light; its checker modules load on first lookup.
* an outside package declares an entry point in the group ``ifharness.suites``: the name is
  the suite's name and the value a module, e.g. ``toy = toy_suite.constraints``. Importing
  that module registers the suite's constraints (a ``@constraint`` there without
  ``suite=`` lands in the entry point's suite) and any profiles. A module that fails to
  import is reported with a warning, and again, as an error, when its suite is asked for.
* code can also register constraints at run time with an explicit ``suite=`` (tests do);
  :func:`unregister_suite` removes them again.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import pkgutil
import random
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .profiles import REFERENCE, Profile
from .relations import SYMBOL
from .text import Text

Prepare = Callable[[dict[str, Any], random.Random, Profile], dict[str, Any]]


class KwargsError(ValueError):
    """Kwargs that do not fit a constraint's signature."""


class UnknownConstraintError(KeyError):
    """A constraint id that the suite asked for (or every suite) does not define."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class AmbiguousConstraintError(UnknownConstraintError):
    """A bare id that several suites define: the caller has to name the suite."""


class UnknownSuiteError(UnknownConstraintError):
    """A suite name that no package under ``verifiers/`` nor any entry point provides."""


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
    # How the generator draws this constraint's kwargs (see ``verifiers/draws.py``); ``None``
    # for a constraint without kwargs or one not yet declared for generation.
    draw: Mapping[str, Any] | None = field(default=None, compare=False)  # a dict: not hashable
    # How a kwarg's value reads in the instruction sentence (a language code as its name, as
    # the reference's own prompts write it); the pseudo-code form keeps the value itself.
    wording: Mapping[str, Mapping[Any, str]] | None = field(default=None, compare=False)

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
        self,
        kwargs: Mapping[str, Any] | None,
        rng: random.Random | None = None,
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
        ops: dict[str, str] = {}
        for k, v in kwargs.items():  # the last relation kwarg names the operator
            if k.endswith("relation") and v in SYMBOL:
                ops["op"] = SYMBOL[v]
        words = dict(kwargs)
        if self.wording and not (pseudo and self.pseudo):
            for k, table in self.wording.items():
                if k in words:
                    words[k] = table.get(words[k], words[k])
        return template.format(**{**ops, **words})


def _same_checker(a: Constraint, b: Constraint) -> bool:
    """Whether two registrations decide alike: the same function and the same set-up step."""
    return a.func is b.func and a.prepare is b.prepare


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


ENTRY_POINT_GROUP = "ifharness.suites"

Key = tuple[str, str]  # (suite, constraint id)


class Registry:
    """Every registered constraint, keyed by ``(suite, id)``.

    Iterating yields the :class:`Constraint` objects. ``values()`` and ``items()`` keep the
    flat registry's reading for older callers: ``items()`` pairs each constraint with its
    bare id, so an id that two suites define appears twice (filter on ``c.suite``).
    """

    def __init__(self) -> None:
        self._by_key: dict[Key, Constraint] = {}
        self._by_id: dict[str, dict[str, Constraint]] = {}
        self._origins: dict[str, str] = {}  # suite -> the module or entry point providing it
        self._failures: dict[str, str] = {}  # suite -> why its entry point did not import
        # suites whose ids a bare lookup never resolves to (their package says BARE_IDS = False)
        self._namespaced: set[str] = set()

    def add(self, c: Constraint) -> None:
        if (c.suite, c.id) in self._by_key:
            raise ValueError(
                f"constraint {c.id!r} registered twice in suite {c.suite!r} ({c.func.__module__})"
            )
        self._by_key[c.suite, c.id] = c
        self._by_id.setdefault(c.id, {})[c.suite] = c
        self._origins.setdefault(c.suite, c.func.__module__)

    def declare_suite(self, suite: str, origin: str) -> None:
        """Record that ``suite`` exists (it may not have registered a constraint yet)."""
        self._origins.setdefault(suite, origin)

    def record_failure(self, suite: str, reason: str) -> None:
        self._failures[suite] = reason

    def remove_suite(self, suite: str) -> list[Constraint]:
        removed = [c for (s, _), c in self._by_key.items() if s == suite]
        for c in removed:
            del self._by_key[suite, c.id]
            del self._by_id[c.id][suite]
            if not self._by_id[c.id]:
                del self._by_id[c.id]
        self._origins.pop(suite, None)
        self._failures.pop(suite, None)
        return removed

    def suites(self) -> list[str]:
        """Names of the suites discovered or registered so far, sorted."""
        return sorted(self._origins)

    def suites_defining(self, id: str) -> list[str]:
        return sorted(self._by_id.get(id, {}))

    def require_suite(self, suite: str) -> None:
        """Raise :class:`UnknownSuiteError` unless ``suite`` is known here."""
        if suite in self._origins:
            return
        if suite in self._failures:
            raise UnknownSuiteError(f"suite {suite!r} failed to load: {self._failures[suite]}")
        known = ", ".join(self.suites()) or "none"
        raise UnknownSuiteError(
            f"unknown suite {suite!r}; installed suites: {known}. A suite is a package under "
            f"ifharness/verifiers/ or an entry point in the group {ENTRY_POINT_GROUP!r}."
        )

    def lookup(self, id: str, suite: str | None = None) -> Constraint:
        """The constraint ``id`` of ``suite``; without a suite, the one meaning it has.

        A bare id that several suites define resolves when they all use the same checker
        (``func`` and ``prepare``), to the suite that registered it first; otherwise
        :class:`AmbiguousConstraintError` names the suites with different checkers.
        """
        if suite is not None:
            found = self._by_key.get((suite, id))
            if found is not None:
                return found
            self.require_suite(suite)
            raise UnknownConstraintError(self._unknown(id, suite))
        by_suite = self._by_id.get(id)
        if by_suite:  # a namespaced-only suite answers only when asked by name
            by_suite = {s: c for s, c in by_suite.items() if s not in self._namespaced} or by_suite
        if not by_suite:
            raise UnknownConstraintError(self._unknown(id, None))
        # Suites that share one checker (IFEvalG re-registers IFEval's 25) are one meaning,
        # so the id is not ambiguous: the suite that defined it first answers.
        first = next(iter(by_suite.values()))
        if all(_same_checker(c, first) for c in by_suite.values()):
            return first
        meanings: dict[str, list[str]] = {}  # first suite of each distinct checker -> sharers
        for s, c in by_suite.items():
            owner = next(o for o, oc in by_suite.items() if _same_checker(c, oc))
            meanings.setdefault(owner, []).append(s)
        shared = "".join(
            f"; {', '.join(sorted(rest))} share{'s' if len(rest) == 1 else ''} {owner}'s checker"
            for owner, (_, *rest) in sorted(meanings.items())
            if rest
        )
        raise AmbiguousConstraintError(
            f"constraint {id!r} is defined by suites {', '.join(sorted(meanings))}; "
            f"pass suite=... (a task's `suite:` decides it for the task){shared}"
        )

    def _unknown(self, id: str, suite: str | None) -> str:
        ids = sorted({cid for s, cid in self._by_key if suite is None or s == suite})
        close = difflib.get_close_matches(id, ids, n=1, cutoff=0.8)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        if suite is None:
            return f"unknown constraint id {id!r}.{hint} `ifharness constraints` lists them all."
        elsewhere = self.suites_defining(id)
        other = f" It is defined by suite {', '.join(elsewhere)}." if elsewhere else ""
        return (
            f"unknown constraint id {id!r} in suite {suite!r}.{hint}{other} "
            f"`ifharness constraints --suite {suite}` lists that suite's ids."
        )

    def __iter__(self) -> Iterator[Constraint]:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, tuple):
            return item in self._by_key
        return item in self._by_id

    def __getitem__(self, item: str | Key) -> Constraint:
        """``REGISTRY[id]`` resolves like :func:`get`; ``REGISTRY[suite, id]`` is exact."""
        if isinstance(item, tuple):
            return self.lookup(item[1], item[0])
        return self.lookup(item)

    def values(self) -> list[Constraint]:
        return list(self._by_key.values())

    def items(self) -> list[tuple[str, Constraint]]:
        return [(c.id, c) for c in self._by_key.values()]


REGISTRY = Registry()

_loaded = False
_loaded_entry_points: set[str] = set()
_entry_point_suite: str | None = None  # the suite whose entry point module is being imported


def _default_suite(module: str, id: str) -> str:
    """The suite a ``@constraint`` without ``suite=`` belongs to, from where it is defined."""
    prefix = f"{__package__}."
    if module.startswith(prefix) and "." in module[len(prefix) :]:
        return module[len(prefix) :].split(".", 1)[0]
    if _entry_point_suite is not None:
        return _entry_point_suite
    raise ValueError(
        f"@constraint({id!r}) in module {module}: pass suite=...; only a module inside a suite "
        f"package ({__package__}.<suite>) or one loaded through the {ENTRY_POINT_GROUP!r} "
        "entry point group gets its suite from where it lives"
    )


def constraint(
    id: str,
    *,
    instruction: str,
    pseudo: str | None = None,
    prepare: Prepare | None = None,
    suite: str | None = None,
    draw: Mapping[str, Any] | None = None,
    wording: Mapping[str, Mapping[Any, str]] | None = None,
) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    """Register ``func`` as the verifier of constraint ``id`` (``family:name``) in ``suite``.

    ``suite`` defaults to the suite package the function lives in (``verifiers/<suite>/``),
    or to the entry point's suite while an ``ifharness.suites`` entry point is imported.
    ``draw`` declares, per kwarg, the values ``ifharness generate`` picks from (a list, a
    ``Words``/``Word``/``PROMPT`` marker or a callable; see ``verifiers/draws.py``), kept next to
    the signature so a new constraint states its generator ranges where it is defined.
    ``wording`` maps a kwarg's values to the words the instruction sentence uses for them
    (``{"language": {"pt": "Portuguese", ...}}``); checks and pseudo-code see the values.
    """

    def register(func: Callable[..., bool]) -> Callable[..., bool]:
        params = list(inspect.signature(func, eval_str=True).parameters.values())[1:]
        fields: dict[str, Any] = {
            p.name: (p.annotation, ... if p.default is inspect.Parameter.empty else p.default)
            for p in params
        }
        model = create_model(
            f"{func.__name__}_kwargs", __config__=ConfigDict(extra="forbid"), **fields
        )
        REGISTRY.add(
            Constraint(
                id=id,
                family=id.split(":", 1)[0],
                suite=suite or _default_suite(func.__module__, id),
                func=func,
                kwargs_model=model,
                instruction=instruction,
                pseudo=pseudo,
                prepare=prepare,
                draw=dict(draw) if draw is not None else None,
                wording={k: dict(v) for k, v in wording.items()} if wording else None,
            )
        )
        return func

    return register


def _package_suites() -> list[str]:
    """The suite packages under ``verifiers/``: every sub-package not starting with ``_``."""
    package = importlib.import_module(__package__)
    return [
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if info.ispkg and not info.name.startswith("_")
    ]


def _import_package_suites(with_modules: bool) -> None:
    for suite in _package_suites():
        package = importlib.import_module(f"{__package__}.{suite}")
        REGISTRY.declare_suite(suite, package.__name__)
        if getattr(package, "BARE_IDS", True) is False:
            REGISTRY._namespaced.add(suite)
        if with_modules:
            for info in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{package.__name__}.{info.name}")


def _import_entry_point_suites() -> None:
    global _entry_point_suite
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _loaded_entry_points:
            continue
        _loaded_entry_points.add(ep.name)
        _entry_point_suite = ep.name
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - an outside suite must not break the others
            reason = f"entry point {ep.name} = {ep.value} raised {type(e).__name__}: {e}"
            REGISTRY.record_failure(ep.name, reason)
            warnings.warn(f"ifharness: suite {reason}", RuntimeWarning, stacklevel=3)
            continue
        finally:
            _entry_point_suite = None
        REGISTRY.declare_suite(ep.name, f"entry point {ep.value}")


def load_all(refresh: bool = False) -> Registry:
    """Import every suite once (the packages under ``verifiers/``, then the entry points), so
    their decorators have run. ``refresh`` looks for entry points installed since."""
    global _loaded
    if not _loaded:
        _import_package_suites(with_modules=True)
        _import_entry_point_suites()
        _loaded = True
    elif refresh:
        importlib.invalidate_caches()
        _import_entry_point_suites()
    return REGISTRY


def suites() -> list[str]:
    """Every installed suite's name, sorted."""
    return load_all().suites()


def require_suite(suite: str) -> None:
    """Load the suites and raise :class:`UnknownSuiteError` unless ``suite`` is one of them."""
    load_all().require_suite(suite)


def unregister_suite(suite: str) -> list[Constraint]:
    """Remove every constraint of ``suite`` (and forget its entry point, so a later
    ``load_all(refresh=True)`` imports it afresh if it is still installed)."""
    _loaded_entry_points.discard(suite)
    return REGISTRY.remove_suite(suite)


def get(id: str, suite: str | None = None) -> Constraint:
    """Constraint ``id`` of ``suite``; without a suite, its one meaning (see ``lookup``)."""
    if not _loaded:
        load_all()
    return REGISTRY.lookup(id, suite)


def check(id: str, text: str | Text, suite: str | None = None, **kwargs: Any) -> bool:
    """Check one constraint on one text in strict mode: the RL reward-function entry point.

    ``suite`` picks the namespace; without it a bare id must have one meaning: one suite
    defines it, or all that do share its checker. A blank text never follows an instruction
    (reference rule).
    """
    c = get(id, suite)
    t = text if isinstance(text, Text) else Text(text)
    return not t.is_blank and c(t, **c.bind(kwargs))


# A suite registers its named, versioned profiles in its package's ``__init__`` (``ifbench-2025``
# for one), so a profile name resolves as soon as the registry is imported, before any checker
# module is loaded. Those ``__init__`` modules are kept light for this reason.
_import_package_suites(with_modules=False)
