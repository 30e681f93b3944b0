"""Committed PlanWorkflow histories, one per barrier branch, replayed by tests/test_replay.py."""
