"""`pee-worker` (src/pee/cli/worker_command.py), kept as a script for a checkout."""

from pee.cli.worker_command import entry

if __name__ == "__main__":
    entry()
