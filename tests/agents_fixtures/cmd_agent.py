"""A command agent for tests: reads the JSON task on stdin, behaves as argv[1] says.

echo      outputs {"summary": <inputs>, "seen": <the task minus inputs>}, writes "shared"
env       outputs {"summary": <the child's environment>, "seen": <cwd>}
crash     prints to stderr, exits 3
badjson   prints text that is not JSON
missing   prints {"summary": 1} only
sleep     starts a grandchild in the same group, writes "<pid> <grandchild pid>" to argv[2],
          then sleeps (for the cancellation and timeout tests)
"""

import json
import os
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
