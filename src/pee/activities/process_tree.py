"""Every process a command agent starts, found and killed, even after `setsid` or a dead worker.

A process group is not enough: a descendant that calls `setsid` (or double-forks into a daemon)
leaves the group and, once its parent exits, the leader's tree too. So an attempt's processes
are known three ways:

- the marker: every child gets ``PEE_AGENT_TREE=<token>`` in its environment, and descendants
  inherit it, whatever session they move to. The token is derived from the workflow run and the
  activity id, so it is the same for every attempt of one agent in one run;
- the tree walk: while the command runs its descendants are sampled (psutil) and each one's pid
  and start time are recorded, which also catches a descendant that clears its environment;
- the state file: those records are kept in a small per-host file (`state_dir()`, one file per
  token), so when a worker dies with its command still running, the retry (on this worker or
  another of the same host) kills the survivors before it starts. A file goes when its attempt
  ends; one whose attempt was never retried is swept (`sweep`) once it is a day old and its
  processes are gone.

A pid is only ever signalled when its start time matches the record (or it carries the marker),
so a reused pid is never hit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # imported where used: psutil is a worker's start-up cost, and nothing here needs it before
    # an agent's command has started
    import psutil

MARKER = "PEE_AGENT_TREE"
# psutil start times are floats rounded differently on each read: equal within this
START_TIME_TOLERANCE_S = 0.05
# a state file untouched this long whose recorded processes are all gone is removed: its
# attempt's worker died and the attempt was never retried, so nobody else would remove it
STALE_AFTER_S = 24 * 3600


def state_dir() -> Path:
    """Host-wide, per user: every worker of this host sees the same files."""
    given = os.environ.get("PEE_PROCESS_STATE_DIR")
    return Path(given) if given else Path(tempfile.gettempdir()) / f"pee-agent-trees-{os.getuid()}"


def token(workflow_id: str | None, run_id: str | None, activity_id: str) -> str:
    """The process tree's mark: the same for every attempt of one activity of one run (the
    ids are None only for an activity run outside a workflow)."""
    return hashlib.sha256(f"{workflow_id}\0{run_id}\0{activity_id}".encode()).hexdigest()[:24]


def _process(pid: int, started: float | None = None) -> psutil.Process | None:
    """The live process `pid`, if its start time is `started` (when given); never a zombie."""
    import psutil

    try:
        process = psutil.Process(pid)
        if started is not None and abs(process.create_time() - started) > START_TIME_TOLERANCE_S:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def running(process: psutil.Process) -> bool:
    """Alive and not a zombie (a zombie is dead, only not yet reaped by its parent)."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process is gone (or a zombie); returns those still running."""
    deadline = time.monotonic() + timeout_s
    left = [process for process in processes if running(process)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [process for process in left if running(process)]
    return left


def marked(tree_token: str) -> list[psutil.Process]:
    """Live processes of this user whose environment carries the marker `tree_token`.

    Only this user's (a real uid check first): a worker running as root must not read every
    other user's environment, and their secrets in it, to find its own processes."""
    import psutil

    found = []
    me, uid = os.getpid(), os.getuid()
    for process in psutil.process_iter(["uids"]):
        try:
            uids = process.info["uids"]
            if process.pid == me or uids is None or uids.real != uid:
                continue
            # the zombie check only for a match: one read of /proc per process, not two
            if (
                process.environ().get(MARKER) == tree_token
                and process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


class Tree:
    """The processes of one attempt, recorded in the state file as they are seen."""

    def __init__(self, tree_token: str) -> None:
        self.token = tree_token
        self.path = state_dir() / f"{tree_token}.json"
        # pid -> start time
        self.known: dict[int, float] = {}
        # sample() runs in a worker thread while kill() may run in another: a sample that ends
        # after forget() must not write the state file again
        self._lock = threading.Lock()
        self._forgotten = False

    def add(self, pid: int) -> None:
        process = _process(pid)
        if process is not None:
            self._note([process])

    def sample(self, leader: int) -> None:
        """Record the leader's current descendants. Blocking (psutil reads the parent of every
        process on the host to find them): run it in a thread."""
        import psutil

        process = _process(leader, self.known.get(leader))
        if process is None:
            return
        with contextlib.suppress(psutil.Error):
            self._note(process.children(recursive=True))

    def _note(self, processes: Iterable[psutil.Process]) -> None:
        import psutil

        new: dict[int, float] = {}
        for process in processes:
            with contextlib.suppress(psutil.Error):
                if process.pid not in self.known:
                    new[process.pid] = process.create_time()
        if not new:
            return
        with self._lock:
            if self._forgotten:
                return
            self.known.update(new)
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({str(pid): at for pid, at in self.known.items()}))
        os.replace(temporary, self.path)

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if isinstance(data, dict):
            for pid, at in data.items():
                with contextlib.suppress(ValueError, TypeError):
                    self.known.setdefault(int(pid), float(at))

    def live(self) -> list[psutil.Process]:
        """Every live process of the attempt: recorded ones, their descendants, marked ones."""
        import psutil

        found: dict[int, psutil.Process] = {}
        with self._lock:
            known = list(self.known.items())
        for pid, started in known:
            process = _process(pid, started)
            if process is None:
                continue
            found[pid] = process
            with contextlib.suppress(psutil.Error):
                found.update(
                    {
                        child.pid: child
                        for child in process.children(recursive=True)
                        if running(child)
                    }
                )
        found.update({process.pid: process for process in marked(self.token)})
        found.pop(os.getpid(), None)
        return list(found.values())

    def signal(self, sig: int) -> list[psutil.Process]:
        import psutil

        processes = self.live()
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)
        return processes

    def kill(self, grace_s: float) -> None:
        """SIGTERM to every process of the attempt, SIGKILL to what is left after `grace_s`
        (blocking: run it in a thread). Then the state file goes."""
        terminated = self.signal(signal.SIGTERM)
        if terminated and grace_s > 0:
            wait_gone(terminated, grace_s)
        # again, fresh: a process may have forked while it was being terminated (when none was
        # found, none could: the usual end of a command that left nothing, one host scan saved)
        for _ in range(3 if terminated else 0):
            killed = self.signal(signal.SIGKILL)
            if not killed:
                break
            wait_gone(killed, 1.0)
        self.forget()

    def forget(self) -> None:
        with self._lock:
            self._forgotten = True
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def sweep(now: float | None = None) -> int:
    """Remove the state files older than `STALE_AFTER_S` none of whose recorded processes
    still runs (and temporary files as old); returns how many went."""
    cutoff = (time.time() if now is None else now) - STALE_AFTER_S
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for path in state_dir().iterdir():
            with contextlib.suppress(OSError):
                if path.suffix not in (".json", ".tmp") or path.stat().st_mtime > cutoff:
                    continue
                tree = Tree(path.stem)
                tree.load()
                if not any(_process(pid, at) for pid, at in tree.known.items()):
                    path.unlink()
                    removed += 1
    return removed


def kill_leftovers(tree_token: str, grace_s: float) -> int:
    """Kill what an earlier attempt with this token left running (its worker died, say);
    returns how many processes were found. Stale state files of other attempts go too
    (`sweep`). Blocking: run it in a thread."""
    sweep()
    tree = Tree(tree_token)
    tree.load()
    found = len(tree.live())
    if found or tree.path.exists():
        tree.kill(grace_s)
    return found
