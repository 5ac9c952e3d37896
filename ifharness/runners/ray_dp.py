"""Data-parallel vLLM replicas as Ray actors across a cluster, fed from one queue here.

``ifharness run --data-parallel N --cluster ray [--ray-address ADDR]`` (vllm backend). Why a
second layout next to the replica processes of ``runners.vllm``: those are processes on this
machine; past one machine the usual way to place one engine per device group is Ray (one
engine per actor). What stays the same is everything the run folder depends on: this runner
is a :class:`~ifharness.runners.base.Runner`, so ``base.drive`` still writes every chunk it
yields to the completion store in one write, resumes what is missing, and checks that no key
comes twice. Actors only generate and return completions; only the driver touches the disk.

How the work moves
------------------
The requests are cut into chunks of ``chunk_size`` in one queue here. Each replica holds at
most ``DEPTH`` chunks (so the next one is already there when one finishes) and gets the
next from the queue as it returns one. Replicas run one ``LLM.chat`` per chunk (the
``chunk`` schedule of ``runners.vllm``): a chunk is the unit that can be lost and handed to
another replica, so it is also the unit of work. Greedy answers do not depend on which
replica ran them; sampled ones are seeded per key on a GPU (``request_seed``), as today.

A lost replica
--------------
When an actor dies (its process, or its whole node), every chunk it held goes back to the
front of the queue and is generated again by the others: nothing it held was written,
because a chunk is written only once it is back here whole. A replacement is started when
the cluster has room for one (the lost node's resources are gone; a crashed actor's are
free again), else the run carries on with fewer replicas; it fails only when none is left
and none can be started. Each loss is one line on stderr and an entry of ``describe()
["ray"]`` (run.json ``engine.ray``: replicas, lost, requeued_chunks, restarted).

Processes: an actor that Ray stops takes its engine's processes along (Ray kills a worker's
children when it exits); an actor whose node's raylet died exits by itself, killing its
engine first (``_watch_raylet``), since vLLM's engine core does not notice a dead client.

Ray is imported here, lazily, when a run asks for it (never by ``import ifharness``); this
module registers nothing. The scheduling is :func:`dispatch` over a :class:`Pool`, so the
queue and requeue logic is tested with a fake pool (``tests/test_ray_dp.py``) and on a
real two-node cluster (``tests/test_ray_cluster.py``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ..errors import IfharnessError
from .base import Chunk, Completion, Request, chunked

if TYPE_CHECKING:
    from .vllm import VLLMOptions

DEPTH = 2  # chunks held by one replica: the one it runs and the next
POLL_S = 0.5
RAY_INSTALL = "pip install 'ifharness[ray]' (or `make install`)"


class ReplicaLost(Exception):
    """The replica (its process or its node) is gone; what it held must be done elsewhere."""


class Pool(Protocol):
    """What :func:`dispatch` needs of a set of replicas; ``RayPool`` is the real one."""

    def launch(self, index: int) -> Any:
        """Start replica ``index`` (not waiting for it); a handle."""

    def ready_ref(self, handle: Any) -> Any:
        """A ref that is ready when the replica's engine is up (``result`` gives its facts)."""

    def submit(self, handle: Any, requests: list[Request]) -> Any:
        """Hand a chunk to the replica; a ref to its completions."""

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        """The refs of ``refs`` that are ready, waiting at most ``timeout`` seconds."""

    def result(self, ref: Any) -> Any:
        """What the ref holds; raises :class:`ReplicaLost` when its replica is gone."""

    def has_room(self) -> bool:
        """Whether the cluster can place one more replica now."""

    def stop(self, handle: Any) -> None:
        """Stop the replica (it may be gone already)."""


@dataclass
class _Replica:
    index: int
    handle: Any
    started: float
    info: dict[str, Any] | None = None  # its engine facts once ready
    held: dict[Any, int] = field(default_factory=dict)  # ref -> chunk id


@dataclass
class ClusterRecord:
    """What happened to the replicas (run.json ``engine.ray``)."""

    replicas: int
    address: str | None = None
    nodes: list[str] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)
    requeued_chunks: int = 0
    restarted: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            "address": self.address,
            "nodes": sorted(set(self.nodes)),
            "lost": list(self.lost),
            "requeued_chunks": self.requeued_chunks,
            "restarted": self.restarted,
        }


class Dispatcher:
    """Replicas of a :class:`Pool` and the one chunk queue that feeds them.

    :meth:`start` launches ``replicas`` and waits for their engines; :meth:`run` hands out
    the chunks of one batch of requests and yields each chunk's completions as it comes back
    whole (in any order); it may be called again (a conversation's next turn) on the same
    replicas. A replica that is lost gives its chunks back to the front of the queue; a
    replacement is launched when ``pool.has_room()``, else the others carry on. An error
    that is not a loss (the engine refused a request) stops the run, as on one machine.
    """

    def __init__(
        self,
        pool: Pool,
        record: ClusterRecord,
        *,
        startup_timeout_s: float = 1800.0,
        depth: int = DEPTH,
        log: TextIO | None = None,
        poll_s: float = POLL_S,
    ):
        self.pool, self.record = pool, record
        self.startup_timeout_s, self.depth, self.poll_s = startup_timeout_s, depth, poll_s
        self.log = log or sys.stderr
        self.live: dict[int, _Replica] = {}
        self.starting: dict[Any, _Replica] = {}  # ready ref -> replica whose engine starts
        self.info: dict[str, Any] = {}  # the first engine's facts
        self._next = 0
        self._queue: deque[tuple[int, list[Request]]] = deque()
        self._held: dict[Any, tuple[int, list[Request]]] = {}  # ref -> the chunk it holds

    # -- replicas

    def _launch(self) -> None:
        handle = self.pool.launch(self._next)
        rep = _Replica(self._next, handle, time.monotonic())
        self.starting[self.pool.ready_ref(handle)] = rep
        self._next += 1

    def _say(self, line: str) -> None:
        print(f"ray: {line}", file=self.log, flush=True)

    def start(self, replicas: int) -> None:
        """Launch ``replicas`` engines and wait until every one is up (or the startup time
        is spent: then the run stops, naming how many came up)."""
        for _ in range(replicas):
            self._launch()
        deadline = time.monotonic() + self.startup_timeout_s
        while self.starting:
            self._poll(list(self.starting))
            if not self.starting:
                break
            if time.monotonic() > deadline:
                raise IfharnessError(
                    f"{len(self.live)} of {replicas} Ray replicas were up after "
                    f"{self.startup_timeout_s:.0f} s: the cluster may not have "
                    "--replica-cpus/--replica-gpus free for each (ray status shows what it has)"
                )
        if not self.live:
            raise IfharnessError("no Ray replica could start its engine; see the lines above")

    def stop(self) -> None:
        for rep in [*self.live.values(), *self.starting.values()]:
            with contextlib.suppress(Exception):
                self.pool.stop(rep.handle)
        self.live.clear()
        self.starting.clear()

    def _ready(self, ref: Any) -> None:
        rep = self.starting.pop(ref)
        try:
            rep.info = self.pool.result(ref) or {}
        except ReplicaLost as e:
            self.record.lost.append({"replica": rep.index, "node": None, "error": f"at start: {e}"})
            self._say(f"replica {rep.index} died starting its engine ({e})")
            return
        self.live[rep.index] = rep
        if rep.info.get("node"):
            self.record.nodes.append(str(rep.info["node"]))
        if not self.info:
            self.info = dict(rep.info)

    def _lose(self, rep: _Replica, why: str) -> None:
        back = [self._held.pop(ref) for ref in list(rep.held) if ref in self._held]
        back.sort(key=lambda c: c[0])
        self._queue.extendleft(reversed(back))  # first in line, in their order
        rep.held.clear()
        self.live.pop(rep.index, None)
        with contextlib.suppress(Exception):
            self.pool.stop(rep.handle)
        self.record.requeued_chunks += len(back)
        node = (rep.info or {}).get("node")
        self.record.lost.append(
            {"replica": rep.index, "node": node, "error": why, "requeued_chunks": len(back)}
        )
        restart = bool(self._queue) and self.pool.has_room()
        left = len(self.live) + len(self.starting)
        self._say(
            f"replica {rep.index}"
            + (f" on node {node}" if node else "")
            + f" was lost ({why}); {len(back)} chunk(s) back in the queue; "
            + (
                "starting a replacement"
                if restart
                else f"carrying on with {left} replica(s): no room on the cluster for another"
            )
        )
        if restart:
            self.record.restarted += 1
            self._launch()

    def _poll(self, refs: list[Any]) -> list[tuple[Any, Any]]:
        """Wait a little for ``refs``; engines that came up join, lost replicas give their
        chunks back; the (ref, completions) of chunks that came back whole."""
        done: list[tuple[Any, Any]] = []
        for ref in self.pool.wait(refs, self.poll_s):
            if ref in self.starting:
                self._ready(ref)
                continue
            if ref not in self._held:
                continue  # it belonged to a replica lost meanwhile; its chunk is requeued
            owner = next((r for r in self.live.values() if ref in r.held), None)
            try:
                completions = self.pool.result(ref)
            except ReplicaLost as e:
                if owner is not None:
                    self._lose(owner, str(e) or type(e).__name__)
                else:
                    self._queue.appendleft(self._held.pop(ref))
                    self.record.requeued_chunks += 1
                continue
            self._held.pop(ref)
            if owner is not None:
                owner.held.pop(ref, None)
            done.append((ref, completions))
        now = time.monotonic()
        for ref, rep in list(self.starting.items()):  # a replacement that never came up
            if now - rep.started > self.startup_timeout_s:
                self.starting.pop(ref)
                with contextlib.suppress(Exception):
                    self.pool.stop(rep.handle)
                self.record.lost.append(
                    {"replica": rep.index, "node": None, "error": "not started in time"}
                )
                self._say(
                    f"replica {rep.index} was not up after {self.startup_timeout_s:.0f} s; "
                    "carrying on without it"
                )
        return done

    # -- work

    def run(self, requests: Sequence[Request], chunk_size: int) -> Iterator[Chunk]:
        self._queue.extend(enumerate(list(p) for p in chunked(list(requests), chunk_size)))
        while self._queue or self._held:
            for rep in list(self.live.values()):
                while self._queue and len(rep.held) < self.depth:
                    chunk = self._queue.popleft()
                    ref = self.pool.submit(rep.handle, chunk[1])
                    rep.held[ref] = chunk[0]
                    self._held[ref] = chunk
            if not self.live and not self.starting:
                left = len(self._queue)
                self._queue.clear()
                raise IfharnessError(
                    f"every Ray replica was lost ({len(self.record.lost)} lost) and the "
                    f"cluster has no room for another; {left} chunk(s) not generated. Run the "
                    "same command again once the cluster has its nodes back: what was "
                    "written is kept"
                )
            for _, completions in self._poll(list(self._held) + list(self.starting)):
                yield Chunk(list(completions))


# ----------------------------------------------------------------------------- Ray


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise IfharnessError(f"--cluster ray needs Ray: {RAY_INSTALL}") from None
    return ray


def _watch_raylet() -> None:
    """Exit, taking the engine's processes along, as soon as this node's raylet is gone: a
    Ray worker whose node died would otherwise leave vLLM's engine core running."""
    parent = os.getppid()

    def wait() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        from .vllm import _kill_children

        _kill_children(grace_s=2.0)
        os._exit(1)

    threading.Thread(target=wait, name="ifharness-raylet-watch", daemon=True).start()


class ReplicaActor:
    """One engine in a Ray actor (what ``RayPool`` starts with ``ray.remote``)."""

    def __init__(self, options: VLLMOptions, env: dict[str, str]):
        # the node's own settings (its VLLM_CPU_OMP_THREADS_BIND, its KV cache) win
        for k, v in env.items():
            os.environ.setdefault(k, v)
        log_path = options.log_path
        if log_path and os.path.isdir(os.path.dirname(log_path)):  # same or shared disk
            from .vllm import _log_to

            _log_to(log_path)
        _watch_raylet()
        from .vllm import Engine

        self.engine = Engine(options)

    def describe(self) -> dict[str, Any]:
        import socket

        import ray

        info = self.engine.describe()
        info["node"] = ray.get_runtime_context().get_node_id()
        info["host"] = socket.gethostname()
        return info

    def generate(self, requests: list[Request]) -> list[Completion]:
        return self.engine.generate(requests)

    def shutdown(self) -> None:
        from .vllm import _kill_children

        self.engine.close()
        _kill_children(grace_s=2.0)


class RayPool:
    """Replicas as Ray actors: ``cpus`` (and ``gpus``) each, spread over the nodes."""

    def __init__(self, options: VLLMOptions, env: dict[str, str], cpus: float, gpus: float):
        self.ray = import_ray()
        self.options, self.env, self.cpus, self.gpus = options, env, cpus, gpus
        self._actor_cls = self.ray.remote(ReplicaActor)

    def launch(self, index: int) -> Any:
        return self._actor_cls.options(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            scheduling_strategy="SPREAD",
            max_restarts=0,
            name=None,
        ).remote(self.options, self.env)

    def ready_ref(self, handle: Any) -> Any:
        return handle.describe.remote()

    def submit(self, handle: Any, requests: list[Request]) -> Any:
        return handle.generate.remote(requests)

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        if not refs:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=timeout)
        return list(ready)

    def result(self, ref: Any) -> Any:
        exc = self.ray.exceptions
        lost = (
            exc.ActorDiedError,
            exc.ActorUnavailableError,
            exc.NodeDiedError,
            exc.ObjectLostError,
            exc.OwnerDiedError,
            exc.WorkerCrashedError,
        )
        try:
            return self.ray.get(ref)
        except lost as e:
            first = (str(e).splitlines() or [""])[0]
            raise ReplicaLost(f"{type(e).__name__}: {first[:120]}") from e
        except exc.RayTaskError as e:  # the engine's own error, raised in the actor
            cause = getattr(e, "cause", None) or e
            raise IfharnessError(
                f"a vLLM replica on the Ray cluster failed on {self.options.model}: "
                f"{type(cause).__name__}: {str(cause).splitlines()[0][:300]}"
            ) from None

    def has_room(self) -> bool:
        free = self.ray.available_resources()
        return free.get("CPU", 0) >= self.cpus and free.get("GPU", 0) >= self.gpus

    def stop(self, handle: Any) -> None:
        with contextlib.suppress(Exception):
            self.ray.get(handle.shutdown.remote(), timeout=30)
        with contextlib.suppress(Exception):
            self.ray.kill(handle, no_restart=True)


class RayVLLMRunner:
    """The vllm backend's ``--cluster ray``: ``data_parallel`` engines as Ray actors."""

    name = "vllm"

    def __init__(
        self,
        options: VLLMOptions,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float | None = None,
        log: TextIO | None = None,
    ):
        self.options = options
        self.address = address
        self.cpus = cpus
        self.gpus = gpus
        self.log = log
        self.cluster_record = ClusterRecord(options.data_parallel, address)
        self._work: list[tuple[int, int, int]] | None = None
        self._dispatcher: Dispatcher | None = None
        self._connected = False

    def plan(self, requests: Sequence[Request]) -> None:
        """As the local runner's: the engines are sized for the work (a replica's share)."""
        from .vllm import VLLMRunner

        helper = VLLMRunner(self.options)
        helper.plan(requests)
        self._work = helper._work

    def start(self) -> None:
        from .vllm import VLLMRunner, replica_envs, require_vllm

        require_vllm()
        ray = import_ray()
        helper = VLLMRunner(self.options)
        helper._work = self._work
        helper.tune()  # its choices land in self.options (the same object)
        env = replica_envs(self.options)[0]
        for k in ("VLLM_CPU_OMP_THREADS_BIND", "CUDA_VISIBLE_DEVICES"):
            env.pop(k, None)  # Ray gives each actor its devices; cores are the node's to set
        ray.init(
            address=self.address,
            log_to_driver=self.options.log_path is None,
            ignore_reinit_error=True,
        )
        self._connected = True
        if self.gpus is None:  # a GPU cluster: one device per tensor-parallel rank
            has_gpus = bool(ray.cluster_resources().get("GPU"))
            self.gpus = float(self.options.tensor_parallel) if has_gpus else 0.0
        self.cluster_record.nodes = []
        self._dispatcher = Dispatcher(
            RayPool(self.options, env, self.cpus, self.gpus),
            self.cluster_record,
            startup_timeout_s=self.options.startup_timeout_s,
            log=self.log,
        )
        self._dispatcher.start(self.options.data_parallel)

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[Chunk]:
        if self._dispatcher is None:
            raise IfharnessError("the ray runner was not started")
        yield from self._dispatcher.run(requests, chunk_size)

    def close(self) -> None:
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.stop()
        if self._connected:
            self._connected = False
            with contextlib.suppress(Exception):
                import_ray().shutdown()

    def describe(self) -> dict[str, Any]:
        from .vllm import vllm_version

        o = self.options
        info = dict(self._dispatcher.info) if self._dispatcher is not None else {}
        info.pop("node", None)
        info.pop("host", None)
        return {
            "backend": "vllm",
            "vllm": vllm_version(),
            "cluster": "ray",
            "tensor_parallel": o.tensor_parallel,
            "data_parallel": o.data_parallel,
            "distributed_backend": o.distributed_backend,
            "schedule": "chunk",  # a chunk is what a lost replica gives back
            "seed": o.seed,
            "chat_template_kwargs": o.chat_template_kwargs,
            "tuning": o.tuning,
            **info,
            "ray": {
                **self.cluster_record.to_json(),
                "cpus_per_replica": self.cpus,
                "gpus_per_replica": self.gpus,
            },
        }
