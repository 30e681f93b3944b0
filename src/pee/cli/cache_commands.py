"""`cache stats|clear`: see and invalidate what the agent output and context snapshot caches hold
(one database: a SQLite file per host, or PEE_CACHE_URL's PostgreSQL; the render and prefetch
caches live in each worker's memory)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

PATH_HELP = (
    "a SQLite cache file or a database URL (default PEE_CACHE_URL, else PEE_CACHE_PATH or "
    ".temporal/cache.db)"
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "cache",
        help="show or clear the agent output and context snapshot caches",
        description="The agent output cache and the context snapshot cache live in one "
        "database: PEE_CACHE_URL (postgresql://... shared by the workers of several hosts), "
        "else a SQLite file shared by the workers of this host (PEE_CACHE_PATH, default "
        ".temporal/cache.db).",
    )
    actions = parser.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    stats = actions.add_parser("stats", help="entries, size, hits, misses, hit ratio")
    stats.add_argument("--json", action="store_true", help="print as JSON")
    stats.add_argument("--path", help=PATH_HELP)
    stats.set_defaults(handler=run_stats)
    clear = actions.add_parser(
        "clear",
        help="remove entries: all, or of one agent / plan "
        "(context snapshots too, unless --agent is given)",
    )
    clear.add_argument("--agent", help="only this agent's entries")
    clear.add_argument("--plan", help="only this plan's entries (its name)")
    clear.add_argument("--path", help=PATH_HELP)
    clear.add_argument(
        "--runs",
        action="store_true",
        help="clear the run store instead (ledger runs' report rows; with --plan: that plan's)",
    )
    clear.add_argument(
        "--older-than-days",
        type=float,
        metavar="DAYS",
        help="with --runs: only runs not written for DAYS days",
    )
    clear.set_defaults(handler=run_clear)


def run_stats(args: argparse.Namespace) -> int:
    from pee.activities.output_cache import OutputCache
    from pee.activities.snapshot_cache import SnapshotCache

    cache = OutputCache(args.path)
    stats = cache.stats()
    row: dict[str, Any] = {
        # which one: PEE_CACHE_URL, PEE_CACHE_PATH and --path move it (never a password)
        "store": cache.display,
        "entries": stats.entries,
        "bytes": stats.bytes,
        "hits": stats.hits,
        "misses": stats.misses,
        "hit_ratio": round(stats.hit_ratio, 3),
        "bytes_saved_by_compression": stats.bytes_saved_by_compression,
    }
    snapshots = SnapshotCache(args.path).stats()
    row["context_snapshots"] = {
        "entries": snapshots.entries,
        "bytes": snapshots.bytes,
        "bytes_saved_by_compression": snapshots.bytes_saved_by_compression,
    }
    from pee.stores.runs import RunStore

    runs = RunStore()
    run_stats = runs.stats()
    row["run_store"] = {"runs": run_stats.runs, "rows": run_stats.rows, "store": runs.display}
    if args.json:
        print(json.dumps(row))
    else:
        flat = {
            key: value
            for key, value in row.items()
            if key not in ("context_snapshots", "store", "run_store")
        }
        print("agent outputs:     " + "  ".join(f"{key} {value}" for key, value in flat.items()))
        print(
            "context snapshots: "
            + "  ".join(f"{key} {value}" for key, value in row["context_snapshots"].items())
        )
        print(f"store:             {cache.display}")
        print(f"run store:         runs {run_stats.runs}  rows {run_stats.rows}  ({runs.display})")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from pee.activities.output_cache import OutputCache
    from pee.activities.snapshot_cache import SnapshotCache

    if args.runs:
        return clear_runs(args)
    if args.older_than_days is not None:
        print("error: --older-than-days goes with --runs", file=sys.stderr)
        return 2
    cache = OutputCache(args.path)
    removed = cache.clear(agent=args.agent, plan=args.plan)
    scope = " and ".join(f"{k} {v}" for k, v in (("agent", args.agent), ("plan", args.plan)) if v)
    print(
        f"removed {removed} entr{'y' if removed == 1 else 'ies'}"
        + (f" of {scope}" if scope else "")
        + f" from {cache.display}"
    )
    if args.agent is None:
        # a snapshot belongs to a group's barrier, not to one agent
        snapshots = SnapshotCache(args.path).clear(plan=args.plan)
        print(f"removed {snapshots} context snapshot{'' if snapshots == 1 else 's'}")
    return 0


def clear_runs(args: argparse.Namespace) -> int:
    from pee.stores.runs import RunStore

    days = args.older_than_days
    if days is not None and days < 0:
        print(f"error: --older-than-days must be 0 or more, got {days:g}", file=sys.stderr)
        return 2
    store = RunStore()
    removed = store.clear(plan=args.plan, older_than_s=None if days is None else days * 86400.0)
    print(f"removed {removed} run{'' if removed == 1 else 's'} from the run store {store.display}")
    return 0
