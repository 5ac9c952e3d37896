"""The Ray runner's queue and requeue logic (``runners.ray_dp.Dispatcher``) on a fake pool.

No Ray and no engine: a replica here is a list of chunks it was handed, answered one per poll;
a replica can be made to die after some chunks (as an actor or its node would), with or without
room on the "cluster" for a replacement. What must hold whatever happens: every request comes
back exactly once, whole, from a replica that was alive; what a lost replica held is
regenerated elsewhere; the record says what happened. ``tests/test_ray_cluster.py`` runs the
same on a real two-node Ray cluster.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pytest

from ifharness.errors import IfharnessError
from ifharness.runners.base import Completion, Request, SamplingSettings, drive
from ifharness.runners.ray_dp import ClusterRecord, Dispatcher, ReplicaLost


@dataclass
class FakeReplica:
    index: int
    dies_after: int | None  # chunks answered before it dies (None: never)
    answered: int = 0
    dead: bool = False
    queue: list[Any] = field(default_factory=list)  # refs, in the order handed


@dataclass(eq=False)  # hashed by identity, as Ray's ObjectRefs are by id
class Ref:
    replica: FakeReplica
    requests: list[Request] | None  # None: the ready ref of a starting replica
    result: Any = None
    ready: bool = False


class FakePool:
    def __init__(self, dies_after: dict[int, int] | None = None, room: int = 0):
        self.dies_after = dies_after or {}
        self.room = room  # replacements the cluster can still place
        self.replicas: list[FakeReplica] = []
        self.ran: list[tuple[int, list[Any]]] = []  # (replica, keys) of each chunk answered
        self.stopped: list[int] = []

    def launch(self, index: int) -> FakeReplica:
        rep = FakeReplica(index, self.dies_after.get(index))
        self.replicas.append(rep)
        return rep

    def ready_ref(self, handle: FakeReplica) -> Ref:
        return Ref(handle, None, {"node": f"node-{handle.index}", "dtype": "float32"}, True)

    def submit(self, handle: FakeReplica, requests: list[Request]) -> Ref:
        ref = Ref(handle, list(requests))
        handle.queue.append(ref)
        if handle.dead:
            ref.ready = True
        return ref

    def wait(self, refs: list[Ref], timeout: float) -> list[Ref]:
        # each live replica answers the first chunk it holds; a replica due to die dies
        for rep in self.replicas:
            pending = [r for r in rep.queue if not r.ready]
            if rep.dead or not pending:
                continue
            if rep.dies_after is not None and rep.answered >= rep.dies_after:
                rep.dead = True
                for r in rep.queue:
                    r.ready = True
                continue
            ref = pending[0]
            assert ref.requests is not None
            ref.result = [Completion(r.key, 0, f"answer {r.key}") for r in ref.requests]
            ref.ready = True
            rep.answered += 1
            self.ran.append((rep.index, [r.key for r in ref.requests]))
        return [r for r in refs if r.ready]

    def result(self, ref: Ref) -> Any:
        if ref.requests is not None and ref.replica.dead and ref.result is None:
            raise ReplicaLost("ActorDiedError: the actor died")
        return ref.result

    def has_room(self) -> bool:
        return self.room > 0 and not setattr(self, "room", self.room - 1)

    def stop(self, handle: FakeReplica) -> None:
        self.stopped.append(handle.index)


def requests(count: int) -> list[Request]:
    s = SamplingSettings(max_tokens=8)
    return [Request(k, [{"role": "user", "content": f"q{k}"}], s) for k in range(count)]


class Store:
    def __init__(self) -> None:
        self.rows: list[Completion] = []

    @property
    def done(self) -> set[str]:
        return {str(c.key) for c in self.rows}

    def append(self, completions: Any) -> None:
        self.rows.extend(completions)


class Runner:
    """The dispatcher behind the runner protocol, as ``RayVLLMRunner`` puts it."""

    name = "fake-ray"

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def generate(self, reqs: Any, chunk_size: int) -> Any:
        return self.dispatcher.run(reqs, chunk_size)


def run(pool: FakePool, replicas: int, count: int, chunk: int) -> tuple[Store, ClusterRecord, str]:
    record, log = ClusterRecord(replicas), io.StringIO()
    d = Dispatcher(pool, record, log=log, poll_s=0)
    d.start(replicas)
    store = Store()
    stats = drive(Runner(d), requests(count), store, chunk)  # type: ignore[arg-type]
    assert stats.generated == count
    d.stop()
    return store, record, log.getvalue()


def test_every_request_once_spread_over_the_replicas():
    pool = FakePool()
    store, record, log = run(pool, 3, 20, 3)
    assert sorted(c.key for c in store.rows) == list(range(20))
    assert {i for i, _ in pool.ran} == {0, 1, 2}  # one queue, every replica took work
    assert record.lost == [] and record.requeued_chunks == 0 and log == ""
    assert sorted(record.nodes) == ["node-0", "node-1", "node-2"]


def test_a_lost_replica_gives_its_chunks_back_and_a_replacement_takes_over():
    pool = FakePool(dies_after={1: 1}, room=1)
    store, record, log = run(pool, 2, 24, 2)
    keys = [c.key for c in store.rows]
    assert sorted(keys) == list(range(24))  # nothing lost, nothing twice
    # replica 1 answered one chunk, then died holding DEPTH=2 more: both went back
    assert record.requeued_chunks == 2 and record.restarted == 1
    assert [lost["replica"] for lost in record.lost] == [1]
    assert record.lost[0]["node"] == "node-1" and "ActorDiedError" in record.lost[0]["error"]
    assert "replica 1 on node node-1 was lost" in log and "starting a replacement" in log
    assert {i for i, _ in pool.ran} == {0, 1, 2}  # the replacement (replica 2) worked
    # what the dead replica held was generated by someone alive (and written once)
    answered_by = {k: i for i, ks in pool.ran for k in ks}
    assert sorted(answered_by) == list(range(24))


def test_no_room_carries_on_with_fewer():
    pool = FakePool(dies_after={0: 0}, room=0)
    store, record, log = run(pool, 2, 10, 1)
    assert sorted(c.key for c in store.rows) == list(range(10))
    assert record.restarted == 0 and record.requeued_chunks == 2
    assert "carrying on with 1 replica(s)" in log
    assert {i for i, _ in pool.ran} == {1}


def test_every_replica_lost_stops_the_run_saying_what_to_do():
    pool = FakePool(dies_after={0: 1, 1: 1}, room=0)
    record = ClusterRecord(2)
    d = Dispatcher(pool, record, log=io.StringIO(), poll_s=0)
    d.start(2)
    store = Store()
    with pytest.raises(IfharnessError, match="every Ray replica was lost.*same command again"):
        drive(Runner(d), requests(12), store, 2)  # type: ignore[arg-type]
    # what came back whole before the end is written, exactly once
    assert sorted(c.key for c in store.rows) == sorted({c.key for c in store.rows})
    assert 0 < len(store.rows) < 12 and len(record.lost) == 2


def test_a_second_batch_reuses_the_replicas():
    pool = FakePool()
    record = ClusterRecord(2)
    d = Dispatcher(pool, record, log=io.StringIO(), poll_s=0)
    d.start(2)
    for _ in range(2):  # a conversation's turns: one drive each
        store = Store()
        drive(Runner(d), requests(5), store, 2)  # type: ignore[arg-type]
        assert sorted(c.key for c in store.rows) == list(range(5))
    assert len(pool.replicas) == 2


def test_cluster_flags_and_lazy_ray():
    import subprocess
    import sys

    from ifharness.runners.registry import get_backend

    backend = get_backend("vllm")
    opts = backend.parse_options({"cluster": "ray", "ray_address": "10.0.0.1:6379"})
    assert opts.cluster == "ray" and opts.to_json()["ray_address"] == "10.0.0.1:6379"
    with pytest.raises(IfharnessError, match="--cluster must be"):
        backend.parse_options({"cluster": "slurm"})
    with pytest.raises(IfharnessError, match="--replica-cpus must be more than 0"):
        backend.parse_options({"cluster": "ray", "replica_cpus": 0})
    with pytest.raises(IfharnessError, match="--ray-address: for --cluster ray only"):
        backend.parse_options({"ray_address": "10.0.0.1:6379"})
    # neither `import ifharness` nor loading every backend imports Ray
    code = (
        "import sys, ifharness; from ifharness.runners.registry import backend_names; "
        "backend_names(); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
