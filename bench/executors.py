"""Where a scoring run's tasks are computed: a pool of local worker processes.

A task is whatever the run hands out (``bench.runner``: one architecture under one init seed with the proxies
it still lacks); each worker builds its scorer once with ``make_scorer(device)`` (a picklable callable) and
calls it on every task it receives. The run's process stays the only writer of the results store: the pool
returns results, the run stores them.

:class:`LocalPool`: ``--workers N`` processes (``spawn``), each with its own torch thread count or its own
device (``--devices cuda:0,cuda:1``: worker i takes device i mod the count). A worker that dies (killed, out
of memory) loses only the task it was computing: the pool starts a new worker and retries the task once
(:data:`RETRIES`), then yields it as :class:`WorkerDied`. Results arrive in completion order.

:class:`RayPool`: the same tasks in chunks on a Ray cluster (``--executor ray``), retried by Ray's task
fault tolerance; no scheduler of our own beyond submitting and ``ray.wait``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

LOOPBACK_ONLY = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
"""The environment variable that keeps a local Ray cluster on 127.0.0.1 (Ray's single-machine mode: every
service binds to the loopback address); set for a local cluster started before ``ray`` is imported."""
RETRIES = 1
"""How many times a task whose worker died is given to a new worker before it is given up."""


@dataclass(frozen=True)
class WorkerDied:
    """The result of a task whose worker process died on every attempt."""

    exitcode: int | None
    attempts: int

    def __str__(self) -> str:
        return (f"WorkerDied: the worker process computing it died (exit code {self.exitcode}) on each of "
                f"{self.attempts} attempts")


def _worker(conn: Connection, make_scorer: Callable[[str], Callable[[Any], Any]], device: str, threads: int) -> None:
    """A pool worker: compute the tasks it receives until it receives ``None``. Ctrl-C is the parent's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    scorer = make_scorer(device)
    while (task := conn.recv()) is not None:
        conn.send(scorer(task))


@dataclass
class _Worker:
    process: Any
    conn: Connection


class LocalPool:
    """``workers`` processes on this machine; :meth:`run` yields (task, result) as results arrive.

    Worker i scores with ``make_scorer(devices[i % len(devices)])`` and torch at ``threads`` CPU threads [1].
    Tasks must be hashable (a retry is counted per task)."""

    def __init__(self, make_scorer: Callable[[str], Callable[[Any], Any]], workers: int, devices: Sequence[str],
                 threads: int | None = None) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"--workers {workers!r}: expected a positive integer")
        if not devices:
            raise ValueError("--devices: expected at least one device")
        self.make_scorer, self.workers, self.threads = make_scorer, workers, threads or 1
        self.devices = list(devices)
        self._context = mp.get_context("spawn")

    def _start(self, index: int) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker, daemon=True, name=f"zenbench-worker-{index}",
                                        args=(child, self.make_scorer, self.devices[index % len(self.devices)],
                                              self.threads))
        process.start()
        child.close()
        return _Worker(process, parent)

    def run(self, tasks: Iterable[Hashable]) -> Iterator[tuple[Any, Any]]:
        queue: deque[Hashable] = deque(tasks)
        attempts: Counter[Hashable] = Counter()
        pool = [self._start(i) for i in range(min(self.workers, max(len(queue), 1)))]
        busy: dict[int, Hashable] = {}
        try:
            while queue or busy:
                for i, worker in enumerate(pool):
                    if i not in busy and queue:
                        busy[i] = queue.popleft()
                        worker.conn.send(busy[i])
                ready = wait([pool[i].conn for i in busy] + [pool[i].process.sentinel for i in busy])
                for i in list(busy):
                    worker = pool[i]
                    if worker.conn in ready or worker.process.sentinel in ready:
                        result = _receive(worker)
                        if result is not None:
                            yield busy.pop(i), result
                        elif not worker.process.is_alive():
                            worker.process.join()
                            task = busy.pop(i)
                            attempts[task] += 1
                            if attempts[task] <= RETRIES:
                                queue.appendleft(task)
                            else:
                                yield task, WorkerDied(worker.process.exitcode, attempts[task])
                            worker.conn.close()
                            pool[i] = self._start(i)
        finally:
            for worker in pool:
                if worker.process.is_alive():
                    try:
                        worker.conn.send(None)
                    except OSError:
                        pass
            for worker in pool:
                worker.process.join(timeout=5)
                if worker.process.is_alive():
                    worker.process.terminate()
                    worker.process.join()
                worker.conn.close()


def _receive(worker: _Worker) -> Any:
    """The worker's result if one is waiting, ``None`` when it has none (or died before sending it)."""
    try:
        return worker.conn.recv() if worker.conn.poll() else None
    except (EOFError, OSError):
        return None


class RayPool:
    """Tasks scored on a Ray cluster (the optional extra ``zenbench[ray]``); :meth:`run` yields (task, result)
    as results stream back (``ray.wait``), so the caller stays the only writer of the store.

    Tasks go out in chunks of ``chunk`` [4]; each chunk is one Ray task that builds its scorer with
    ``make_scorer(device)`` and scores the chunk, with ``num_cpus=threads`` [1] and ``num_gpus=1`` when
    ``device`` is CUDA. A chunk whose worker dies is retried by Ray's own task fault tolerance
    (``max_retries`` = :data:`RETRIES`); a chunk that fails beyond that yields :class:`WorkerDied` for each of
    its tasks. ``address`` [None: start a local cluster on 127.0.0.1, without dashboard, ``workers`` CPUs,
    which sees the caller's ``sys.path`` and binds to the loopback address only (:data:`LOOPBACK_ONLY`)] is what
    ``ray.init`` connects to: ``"auto"`` or ``HOST:PORT``.
    """

    def __init__(self, make_scorer: Callable[[str], Callable[[Any], Any]], device: str, *, address: str | None = None,
                 workers: int = 2, threads: int | None = None, chunk: int = 4) -> None:
        if address is None and "ray" not in sys.modules:  # a local cluster: Ray's single-machine mode, loopback only
            os.environ.setdefault(LOOPBACK_ONLY[0], LOOPBACK_ONLY[1])
        try:
            import ray
        except ImportError:
            raise ValueError("--executor ray needs Ray: pip install 'zenbench[ray]'") from None
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"--chunk {chunk!r}: expected a positive integer")
        self.ray, self.make_scorer, self.device = ray, make_scorer, device
        self.address, self.workers, self.threads, self.chunk = address, workers, threads or 1, chunk
        self.node_addresses: list[str] = []
        """The addresses of the cluster's nodes, as seen at the last :meth:`run`."""

    def _connect(self) -> bool:
        """Connect (or start a local cluster); ``True`` when this pool started it and must shut it down."""
        if self.ray.is_initialized():
            return False
        if self.address is not None:
            self.ray.init(address=self.address, log_to_driver=False)
            return True
        self.ray.init(num_cpus=self.workers, include_dashboard=False, _node_ip_address="127.0.0.1",
                      log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
        return True

    def run(self, tasks: Iterable[Hashable]) -> Iterator[tuple[Any, Any]]:
        ray = self.ray
        tasks = list(tasks)
        if not tasks:
            return
        started = self._connect()
        try:
            self.node_addresses = [str(node["NodeManagerAddress"]) for node in ray.nodes()]
            gpus = 1 if self.device.startswith("cuda") else 0
            remote = ray.remote(num_cpus=self.threads, num_gpus=gpus, max_retries=RETRIES)(_score_chunk)
            chunks = {remote.remote(self.make_scorer, self.device, self.threads, part): part
                      for part in (tasks[i:i + self.chunk] for i in range(0, len(tasks), self.chunk))}
            pending = list(chunks)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    part = chunks.pop(ref)
                    try:
                        results = ray.get(ref)
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayTaskError,
                            ray.exceptions.NodeDiedError) as exc:
                        died = WorkerDied(getattr(exc, "exitcode", None), RETRIES + 1)
                        results = [died] * len(part)
                    yield from zip(part, results, strict=True)
        finally:
            if started:
                ray.shutdown()


def _score_chunk(make_scorer: Callable[[str], Callable[[Any], Any]], device: str, threads: int,
                 tasks: list[Any]) -> list[Any]:
    """One Ray task: a scorer for ``device`` at ``threads`` torch threads, applied to each task."""
    torch.set_num_threads(threads)
    scorer = make_scorer(device)
    return [scorer(task) for task in tasks]
