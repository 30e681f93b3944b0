"""Whether the server's CPU per run follows payload bytes: the hand-written gather of N no-op
activities (bench/handwritten.py NoopGatherWorkflow) with short ids against ids padded to about
500 bytes (the activity input and its result both carry the id, so each agent's events grow by
about 1 KB, about what an engine agent's task and result add). Same dev server and worker, the
two alternating after one warm-up round each; prints the median server and worker CPU per run.

    .venv/bin/python bench/payload_bytes_cpu.py [--agents 200] [--rounds 10] [--pad 490]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.handwritten import NoopGatherInput, NoopGatherWorkflow  # noqa: E402
from bench.harness import DevServer, bench_worker, connect, median  # noqa: E402


async def measure(server: DevServer, agents: int, rounds: int, pad: int) -> None:
    client = await connect(server.address)
    task_queue = f"bench-bytes-{uuid.uuid4()}"
    ids = {
        "short": [f"noop{i:03d}" for i in range(agents)],
        "padded": [f"noop{i:03d}" + "x" * pad for i in range(agents)],
    }
    server_cpu: dict[str, list[float]] = {name: [] for name in ids}
    worker_cpu: dict[str, list[float]] = {name: [] for name in ids}
    async with bench_worker(client, task_queue):
        for round_number in range(rounds + 1):
            order = ["short", "padded"] if round_number % 2 == 0 else ["padded", "short"]
            for name in order:
                server_started, worker_started = server.cpu_s(), time.process_time()
                await client.execute_workflow(
                    NoopGatherWorkflow.run,
                    NoopGatherInput(ids[name]),
                    id=f"bench-bytes-{uuid.uuid4()}",
                    task_queue=task_queue,
                )
                if round_number > 0:
                    server_cpu[name].append(server.cpu_s() - server_started)
                    worker_cpu[name].append(time.process_time() - worker_started)
    for name in ids:
        print(
            f"{name:<7} ids: server CPU per run (median) {median(server_cpu[name]) * 1000:.0f} ms, "
            f"worker {median(worker_cpu[name]) * 1000:.0f} ms"
        )
    extra_kb = agents * pad * 2 / 1000
    print(
        f"padded - short: +{extra_kb:.0f} KB of payloads per run, server "
        f"{(median(server_cpu['padded']) - median(server_cpu['short'])) * 1000:+.0f} ms, worker "
        f"{(median(worker_cpu['padded']) - median(worker_cpu['short'])) * 1000:+.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pad", type=int, default=490, help="bytes added to each id")
    args = parser.parse_args(argv)
    with DevServer() as server:
        asyncio.run(measure(server, args.agents, args.rounds, args.pad))
    return 0


if __name__ == "__main__":
    sys.exit(main())
