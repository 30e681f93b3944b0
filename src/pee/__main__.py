"""`python -m pee`: the `pee` command."""

from pee.cli.main import entry

if __name__ == "__main__":
    entry()
