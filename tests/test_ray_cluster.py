"""``ifharness run --cluster ray`` on a real two-node Ray cluster on loopback, losing a node.

The cluster is two ``ray start`` processes on this machine (CPU only): a head and a worker
node with a resource of its own (``node_b``), one CPU each, so the two replicas of the tiny
model land one per node (Ray's SPREAD placement, one CPU per replica) and each engine is
pinned to its own core (``VLLM_CPU_OMP_THREADS_BIND`` in each node's environment: a node's
settings win over the driver's). Mid-run the worker node is killed (SIGKILL to its process
group: its raylet and everything it started), as a preempted machine goes. The run must
complete on the head's replica alone (the cluster has no room for a replacement), with
every sample exactly once in completions.jsonl, the loss said on stderr and in run.json
(``engine.ray``), and the same verdicts as a one-replica run on this machine. A second
case gives the head two CPUs: then there is room, and a replacement replica is started.

Where the engine is deterministic, and where not: greedy decoding of the tiny random model
on vLLM's CPU build gives the same text for the same batch on the same number of threads,
whichever replica or node runs it. Across batch compositions or thread counts it mostly
does too (``tests/test_run_vllm.py``, 24-token answers), but not always over 96 tokens: a
first try against a default one-replica run (stream schedule, both cores) differed in one
answer of 40, late in the answer, where two tokens were near-tied. So the one-replica run
here is made with the batches the Ray replicas ran (``--schedule chunk`` and the same
``--chunk-size``: a requeued chunk keeps its requests) on one pinned core, as each replica
had; then every answer, verdict and metric must be equal. That holds when the head has one
CPU (its replica pinned to it); when it has two, the head's replicas are not pinned like the
reference and answers are compared for completeness only (see the test).

Teardown never uses ``ray stop`` (it stops every Ray on the machine, not only ours): every
process the cluster started carries a marker in its environment and is killed by its pid.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.data import write_prompts

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None or importlib.util.find_spec("ray") is None,
        reason="needs vLLM and Ray (make install installs both)",
    ),
]

RAY = str(Path(sys.executable).parent / "ray")
PROMPTS = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _marked(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker`` (ours, started by the cluster)."""
    needle = f"IFHARNESS_TEST_RAY={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    with open(f"/proc/{entry}/stat", "rb") as s:
                        if s.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                            pids.append(int(entry))
        except OSError:
            continue
    return pids


def _kill_marked(marker: str) -> None:
    for _ in range(3):
        pids = _marked(marker)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(1)


class Cluster:
    def __init__(self, root: Path, head_cpus: int = 1):
        self.root = root
        self.head_cpus = head_cpus
        self.marker = uuid.uuid4().hex
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "IFHARNESS_TEST_RAY": self.marker,
            "RAY_AUTH_MODE": "disabled",  # a loopback test cluster; no token under ~/.ray
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.head: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def _start(
        self, name: str, args: list[str], core: int, cpus: int = 1
    ) -> subprocess.Popen[bytes]:
        env = {**self.env, "VLLM_CPU_OMP_THREADS_BIND": str(core)}
        with open(self.root / f"{name}.log", "wb") as log:
            return subprocess.Popen(
                [RAY, "start", "--block", "--num-cpus", str(cpus), "--disable-usage-stats", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> None:
        cores = sorted(os.sched_getaffinity(0))
        self.head = self._start(
            "head",
            [
                "--head",
                "--port",
                str(self.port),
                "--node-ip-address",
                "127.0.0.1",
                "--include-dashboard",
                "false",
                "--temp-dir",
                str(self.root / "ray"),
            ],
            cores[0],
            self.head_cpus,
        )
        self.wait_nodes(1)
        self.worker = self._start(
            "worker",
            [
                "--address",
                self.address,
                "--node-ip-address",
                "127.0.0.1",
                "--resources",
                json.dumps({"node_b": 1}),
            ],
            cores[-1],
        )
        self.wait_nodes(2)

    def wait_nodes(self, n: int, timeout: float = 180) -> None:
        code = (
            "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "print(sum(1 for x in ray.nodes() if x['Alive']))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(
                [sys.executable, "-c", code, self.address],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(n)]:
                return
            time.sleep(2)
        logs = "".join((self.root / f).read_text()[-1500:] for f in ("head.log", "worker.log"))
        raise AssertionError(f"the Ray cluster did not get {n} node(s); {logs}")

    def kill_worker_node(self) -> None:
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(30)

    def stop(self) -> None:
        for proc in (self.worker, self.head):
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(30)
        _kill_marked(self.marker)  # actors and engines that left their process groups


@pytest.fixture
def ray_cluster(request) -> Iterator[Cluster]:
    """A head and a worker node; ``request.param`` is the head's CPU count (1: no room for
    a replacement once the worker node is gone; 2: room for one)."""
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"ifh-ray-{uuid.uuid4().hex[:8]}"
    root.mkdir()  # short: Ray's socket paths under --temp-dir must fit in 107 bytes
    cluster = Cluster(root, getattr(request, "param", 1))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        assert not _marked(cluster.marker), "processes of the test cluster are still running"


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.parametrize(
    "ray_cluster", [1, 2], ids=["no-room-carries-on", "room-restarts"], indirect=True
)
def test_two_replicas_survive_a_lost_node(tmp_path, tiny_model, ray_cluster):
    data = write_prompts(tmp_path / "prompts.jsonl", PROMPTS)
    common = [
        "--model",
        str(tiny_model),
        "--task",
        "ifeval",
        "--data",
        str(data),
        "--max-tokens",
        "96",
        "--chunk-size",
        "2",
    ]
    out = tmp_path / "ray-run"
    cmd = [
        *(sys.executable, "-m", "ifharness.cli", "run", "--backend", "vllm"),
        *common,
        *("--cluster", "ray", "--ray-address", ray_cluster.address, "--data-parallel", "2"),
        *("--out", str(out)),
    ]
    completions = out / "completions.jsonl"
    log_path = tmp_path / "ray-run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=ray_cluster.env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 900
        while proc.poll() is None and time.monotonic() < deadline and _lines(completions) < 6:
            time.sleep(0.05)
        at_kill = _lines(completions)
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert at_kill < PROMPTS - 4  # the node goes while there is work left for it
        ray_cluster.kill_worker_node()
        proc.wait(900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    text = log_path.read_text()
    assert proc.returncode == 0, text[-4000:]
    assert "was lost" in text and "chunk(s) back in the queue" in text, text[-3000:]

    rows = [json.loads(x) for x in completions.read_text().splitlines()]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == PROMPTS  # every sample, exactly once
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    ray_record = run["engine"]["ray"]
    assert ray_record["replicas"] == 2 and len(ray_record["nodes"]) == 2  # one per node
    assert len(ray_record["lost"]) == 1 and ray_record["requeued_chunks"] >= 1
    if ray_cluster.head_cpus == 1:  # the head's only CPU is its own replica's
        assert ray_record["restarted"] == 0 and "carrying on with 1 replica(s)" in text
    else:  # a replacement was started on the head's free CPU (it may come up too late
        # to take work from a run this short; either way the run stops it at the end)
        assert ray_record["restarted"] == 1 and "starting a replacement" in text

    ray_cluster.stop()  # the reference run has the machine to itself
    whole = tmp_path / "one-replica"
    ref = subprocess.run(
        [
            *(sys.executable, "-m", "ifharness.cli", "run", "--backend", "vllm"),
            *common,
            *("--schedule", "chunk", "--out", str(whole)),
        ],
        env={**os.environ, "VLLM_CPU_OMP_THREADS_BIND": str(min(os.sched_getaffinity(0)))},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert ref.returncode == 0, ref.stderr[-3000:]
    expected = {
        r["key"]: r["response"]
        for r in map(json.loads, (whole / "completions.jsonl").read_text().splitlines())
    }
    got = {r["key"]: r["response"] for r in rows}
    assert set(got) == set(expected)
    if ray_cluster.head_cpus == 1:  # every chunk ran on one pinned core, as the reference did
        assert got == expected
        assert (out / "verdicts.jsonl").read_text() == (whole / "verdicts.jsonl").read_text()
        assert json.loads((out / "metrics.json").read_text()) == json.loads(
            (whole / "metrics.json").read_text()
        )
    else:
        # Where the engine is not deterministic: with a free CPU on the head, the head's
        # replica (or its replacement) runs on other threads than the reference run's one
        # pinned core, and over 96 greedy tokens a near-tie can then come out differently
        # (seen once: 2 of 40 answers, late in the answer). Completeness is what this case
        # checks (above); the equality of answers is the one-CPU case's.
        differ = [k for k in expected if got[k] != expected[k]]
        assert len(differ) < len(expected), differ  # not a different model or prompt set
