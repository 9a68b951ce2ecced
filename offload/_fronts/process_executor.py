"""The ProcessPoolExecutor behind ``offload.ProcessPool``, with a race of CPython closed.

Imported when the first ProcessPool is made, not with offload: multiprocessing would
add its import time to the start-up of every program that imports offload.

The race (with the "spawn" and "forkserver" start methods, which start workers on
demand): ``submit()`` wakes the executor's manager thread *before* it starts the new
worker process the call needs. The manager thread then lists the workers whose exit it
watches, and since the fix of gh-105829 (2023) it no longer waits for ``submit()`` to
let go of the executor's lock before it does, so the list can miss the new worker. If
that worker dies before the manager next wakes (on its first call, say, while no other
call finishes), its death goes unnoticed: the executor never breaks, and the calls in
it wait for ever: a worker killed by its first call can leave its caller waiting for
good. Waking the manager again once the worker exists closes the window.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

__all__ = ["WatchfulProcessPoolExecutor"]


class WatchfulProcessPoolExecutor(ProcessPoolExecutor):
    def _adjust_process_count(self) -> None:
        # Called with the executor's _shutdown_lock held (by submit(), or by the manager
        # thread replacing a worker), which the wake-up needs: the manager closes the
        # pipe under it.
        workers = len(self._processes)
        super()._adjust_process_count()
        if len(self._processes) > workers:
            self._executor_manager_thread_wakeup.wakeup()
