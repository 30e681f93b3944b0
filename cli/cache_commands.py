"""`cache stats|clear`: see and invalidate what the agent output cache holds."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "cache", help="show or clear the agent output cache",
        description="The agent output cache is a SQLite file shared by the workers of this host "
        "(PEE_CACHE_PATH, default .temporal/cache.db).",
    )
    actions = parser.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    stats = actions.add_parser("stats", help="entries, size, hits, misses, hit ratio")
    stats.add_argument("--json", action="store_true", help="print as JSON")
    stats.add_argument("--path", help="cache file (default PEE_CACHE_PATH or .temporal/cache.db)")
    stats.set_defaults(handler=run_stats)
    clear = actions.add_parser("clear", help="remove entries: all, or of one agent / plan")
    clear.add_argument("--agent", help="only this agent's entries")
    clear.add_argument("--plan", help="only this plan's entries (its name)")
    clear.add_argument("--path", help="cache file (default PEE_CACHE_PATH or .temporal/cache.db)")
    clear.set_defaults(handler=run_clear)


def run_stats(args: argparse.Namespace) -> int:
    from activities.output_cache import OutputCache

    stats = OutputCache(args.path).stats()
    row = {"entries": stats.entries, "bytes": stats.bytes, "hits": stats.hits,
           "misses": stats.misses, "hit_ratio": round(stats.hit_ratio, 3),
           "bytes_saved_by_compression": stats.bytes_saved_by_compression}
    if args.json:
        print(json.dumps(row))
    else:
        print("  ".join(f"{key} {value}" for key, value in row.items()))
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from activities.output_cache import OutputCache

    removed = OutputCache(args.path).clear(agent=args.agent, plan=args.plan)
    scope = " and ".join(f"{k} {v}" for k, v in (("agent", args.agent), ("plan", args.plan)) if v)
    print(f"removed {removed} entr{'y' if removed == 1 else 'ies'}"
          + (f" of {scope}" if scope else ""))
    return 0
