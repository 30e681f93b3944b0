"""Command-line options several commands share: the plan and how it runs (`run`, `compile`),
where the server is (`run`, `status`, `conflicts`, `outputs`, ...) and the metrics port (`run`,
`pee-worker`)."""

from __future__ import annotations

import argparse

from pee.cli.common import add_input_option, add_set_option, positive_float, positive_int


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """What `run` and `compile` share: the plan, its variables and inputs, how it runs."""
    parser.add_argument("plan", metavar="PLAN", help="plan YAML (native, seed or BMAD v4)")
    add_input_option(parser)
    add_set_option(parser)
    parser.add_argument(
        "--time-scale",
        type=positive_float,
        metavar="F",
        help="multiply every duration and timeout by F (default PEE_TIME_SCALE; else a plan of "
        "pretend agents estimated above 60 s is scaled to run in about 15 s)",
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="each agent also takes its estimated duration (scaled), heartbeating",
    )
    parser.add_argument(
        "--no-learn",
        action="store_true",
        help="ignore the durations measured in earlier runs (and, for run, record none)",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="agents' heartbeat timeout: how soon a dead worker's agents move to another "
        "(default: derived from the time scale)",
    )
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument(
        "--batch",
        dest="batch",
        action="store_true",
        default=None,
        help="batch mode: agents run in child workflows of up to --batch-chunk agents "
        "(default: on for plans of more than 300 agents; docs/guides/large-plans.md)",
    )
    batch.add_argument(
        "--no-batch",
        dest="batch",
        action="store_false",
        help="never batch mode: every agent an activity of the run",
    )
    parser.add_argument(
        "--batch-chunk",
        type=positive_int,
        metavar="N",
        help="batch mode: at most N agents per child workflow (default 100)",
    )
    parser.add_argument(
        "--batch-window",
        type=positive_int,
        metavar="N",
        help="batch mode: at most N child workflows at a time (default 16)",
    )
    parser.add_argument(
        "--batch-local",
        type=seconds_or_zero,
        metavar="SECONDS",
        help="batch mode: agents whose timeout (after --time-scale) is at most this run as "
        "local activities of their child, 0 for none (default 10; docs/guides/large-plans.md)",
    )
    parser.add_argument(
        "--batch-split",
        type=seconds_or_zero,
        metavar="SECONDS",
        help="batch mode: split a chunk of local agents between short and long groups where "
        "that saves at least this much waiting, 0 never (default 10; "
        "docs/guides/large-plans.md)",
    )
    ledger = parser.add_mutually_exclusive_group()
    ledger.add_argument(
        "--ledger",
        dest="ledger",
        action="store_true",
        default=None,
        help="report rows go to the run store as the run goes (default: with batch mode; "
        "docs/guides/large-plans.md)",
    )
    ledger.add_argument(
        "--no-ledger",
        dest="ledger",
        action="store_false",
        help="keep the whole report in the run (its result grows with the plan)",
    )
    parser.add_argument(
        "--continue-as-new-after",
        type=positive_int,
        metavar="EVENTS",
        help="continue as new once a run's history has EVENTS events, even before Temporal "
        "suggests it (default: when Temporal suggests it; docs/guides/large-plans.md)",
    )


def seconds_or_zero(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of 0 or more, found {text!r}")
    return value


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Where the server is and how to reach it (TLS, mTLS, API key): pee.runtime.connection."""
    from pee.runtime.connection_flags import add_connection_arguments

    add_connection_arguments(
        parser.add_argument_group("connection"),
        address_help="Temporal frontend (default TEMPORAL_ADDRESS or the profile's, else "
        "localhost:7233 where the embedded dev server is started when nothing listens)",
    )


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, found {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1-65535, found {text!r}")
    return value


def add_metrics_port_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="N",
        help="serve the Temporal SDK's metrics (workflow and activity task latencies, slots, "
        "polls...) for Prometheus at http://127.0.0.1:N/metrics (PEE_METRICS_HOST changes the "
        "host)",
    )
