"""Where a scoring run's tasks are computed: a pool of local worker processes.

A task is whatever the run hands out (``bench.runner``: one architecture under one init seed with the proxies
it still lacks); each worker builds its scorer once with ``make_scorer(device)`` (a picklable callable) and
calls it on every task it receives. The run's process stays the only writer of the results store: the pool
returns results, the run stores them.

:class:`LocalPool`: ``--workers N`` processes (``spawn``), each with its own torch thread count or its own
device (``--devices cuda:0,cuda:1``: worker i takes device i mod the count). A worker that dies (killed, out
of memory) loses only the task it was computing: the pool starts a new worker and retries the task once
(:data:`RETRIES`), then yields it as :class:`WorkerDied`. Results arrive in completion order.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

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
