"""Validate, analyse, run and inspect plans: the `pee` command (`pee --help`), kept as a script
for `python starter.py ...` from a checkout."""

from pee.cli.main import entry

if __name__ == "__main__":
    entry()
