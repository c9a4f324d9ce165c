"""`--executor dask[=SCHEDULER_ADDRESS]`: check claims on a dask.distributed cluster (`pip install 'verify[cluster]'`).

The unit of work is the local one: one claim in, one `Result` out, computed by `gate.check_by_kind` on a worker
with the same options (so the same engines, child processes, time limits and cache). Each task's dask key is
the claim's cache key (`cache.cache_key`) plus its index in the run, so a task is named by what it
proves. Without an address a `LocalCluster` of worker processes on this machine is started for the run (one per
`--jobs`, at least 2) and closed after it; with one, the run connects to that scheduler. Workers read and write
`--cache-dir` themselves: on a remote cluster put it on a shared file system (or use `--cache off`).

dask's worker processes are daemonic, and daemonic processes may not start children; every claim runs in a
killable child process (`isolation.run_isolated`), so `_work` lifts that flag in the worker first.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from dataclasses import replace

from .cache import cache_key
from .errors import UsageError
from .sizes import effective_bound

# seconds to reach a scheduler before the run is a user error (exit 2); env VERIFY_DASK_CONNECT_TIMEOUT
CONNECT_TIMEOUT = float(os.environ.get("VERIFY_DASK_CONNECT_TIMEOUT", 10))


def parse(spec: str) -> str | None:
    """'local' -> None; 'dask' -> '' (a local cluster); 'dask=ADDRESS' -> ADDRESS. Anything else: UsageError."""
    if spec == "local":
        return None
    name, _, address = spec.partition("=")
    if name != "dask" or (_ and not address.strip()):
        raise UsageError(f"unknown executor '{spec}'",
                         hint="use --executor local, --executor dask (a local cluster) or --executor dask=HOST:PORT")
    return address.strip()


def _work(check, claim, options):
    multiprocessing.current_process()._config["daemon"] = False   # see the module docstring
    return check(claim, options)


def _client(address: str, jobs: int):
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--executor dask needs dask.distributed, which is not installed",
                         hint="pip install 'verify[cluster]'") from None
    if address:
        try:
            return Client(address, timeout=CONNECT_TIMEOUT), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"cannot reach the dask scheduler at {address}: {exc}",
                             hint="start one with `dask scheduler` (and `dask worker ADDRESS`), or use "
                                  "--executor dask for a local cluster") from None
    with dask.config.set({"distributed.worker.daemon": False, "distributed.logging.distributed": "error"}):
        cluster = LocalCluster(n_workers=max(2, jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
    return Client(cluster), cluster


def map_claims(claims, options, events=None, *, check, lost, encoding: str):
    """(index, Result) for every claim, in completion order, computed on the cluster. `check(claim, options)`
    is the gate's check of one claim (a module-level function: the workers import it by name), `lost(claim,
    detail, seconds)` the driver's result for a claim no worker returned, and `encoding` the encoding version:
    passed in so that this executor does not import the modules that call it."""
    address = parse(options.executor)
    client, cluster = _client(address or "", options.jobs)
    worker_options = replace(options, executor="local", jobs=1)
    run = uuid.uuid4().hex[:8]
    try:
        from distributed import as_completed

        futures = {}
        for i, claim in enumerate(claims):
            key = cache_key(claim, effective_bound(claim, options.bound), encoding, options.sympy)
            future = client.submit(_work, check, claim, worker_options, key=f"verify-{key}-{run}-{i}", pure=False)
            futures[future] = (i, claim, time.monotonic())
            if events:
                events.started(i, claim)
        for future in as_completed(futures):
            i, claim, started = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a worker lost or killed: the driver decides what that means
                result = lost(claim, f"the cluster did not return a result ({type(exc).__name__}: {exc})",
                              time.monotonic() - started)
            yield i, result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
