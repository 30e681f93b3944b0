"""A command agent for tests: reads the JSON task on stdin, behaves as argv[1] says.

echo      outputs {"summary": <inputs>, "seen": <the task minus inputs>}, writes "shared"
env       outputs {"summary": <the child's environment>, "seen": <cwd>}
crash     prints to stderr, exits 3
badjson   prints text that is not JSON
missing   prints {"summary": 1} only
sleep     starts a grandchild in the same group, writes "<pid> <grandchild pid>" to argv[2],
          then sleeps (for the cancellation and timeout tests)
holdout   starts a grandchild that keeps stdout open and sleeps, writes "<pid> <grandchild
          pid>" to argv[2], prints its outputs and exits at once
daemon    double-forks a grandchild into its own session (`setsid`; its parent exits at once,
          so it is no longer in the leader's tree), writes "<pid> <daemon pid>" to argv[2],
          then sleeps
"""

import json
import os
import signal
import subprocess
import sys
import time

mode = sys.argv[1]
task = json.load(sys.stdin)
if mode == "echo":
    seen = {key: value for key, value in task.items() if key != "inputs"}
    print(json.dumps({"summary": task["inputs"], "seen": seen, "shared": "s", "extra": 1}))
elif mode == "env":
    print(json.dumps({"summary": dict(os.environ), "seen": os.getcwd(), "shared": "s"}))
elif mode == "crash":
    print("starting...", file=sys.stderr)
    print("boom: the model file is missing", file=sys.stderr)
    sys.exit(3)
elif mode == "badjson":
    print("Here are your outputs: summary=1")
elif mode == "missing":
    print(json.dumps({"summary": 1}))
elif mode == "sleep":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(sys.argv[2] + ".tmp", "w") as out:
        out.write(f"{os.getpid()} {child.pid}")
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    time.sleep(60)
elif mode == "holdout":
    # inherits stdout: the pipe stays open as long as it lives
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(sys.argv[2] + ".tmp", "w") as out:
        out.write(f"{os.getpid()} {child.pid}")
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    print(json.dumps({"summary": "done", "seen": "held", "shared": "s"}), flush=True)
elif mode == "daemon":
    # the intermediate starts the daemon in a new session, prints its pid and exits; the
    # daemon ignores SIGTERM and holds no pipe of ours
    spawn = (
        "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "time.sleep(60)'], start_new_session=True, stdin=subprocess.DEVNULL, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"
    )
    daemon = int(
        subprocess.run(
            [sys.executable, "-c", spawn], capture_output=True, text=True, check=True
        ).stdout
    )
    with open(sys.argv[2] + ".tmp", "w") as out:
        out.write(f"{os.getpid()} {daemon}")
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
