"""Validate, analyse, run and inspect plans: `python starter.py --help`."""

from cli.main import main
from runtime.exit import run_entry

if __name__ == "__main__":
    # every command shuts down its worker, client and event loop before returning its code;
    # run_entry then exits hard so the Rust bridge cannot crash interpreter teardown
    run_entry(main)
