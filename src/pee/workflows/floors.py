"""Floors on scaled durations (PlanWorkflow and its parts): a plan scaled to seconds must still
leave the worker time to pick an activity up, and heartbeats are sent in real time whatever the
scale."""

MIN_ACTIVITY_TIMEOUT_S = 1.0
MIN_RETRY_INTERVAL_S = 0.1
MIN_HEARTBEAT_TIMEOUT_S = 1.0
