"""A run's side of a shared pool (workflows/pool_lease.LeasedAdmission) as plain data: lease
ids per request, grants taken in order, stale grants given back, and grants kept for agents the
adaptive throttle withholds (pee.engine.rules.adaptive moves them out of `waiting` for a while)."""

from __future__ import annotations

from pee.activities.pool_types import PoolGrant
from pee.engine.rules.scheduler import Pool, Request
from pee.workflows.pool_lease import LeasedAdmission, holds


def leased(*agents: str) -> LeasedAdmission:
    admission = LeasedAdmission(Pool(100, 100, 4), pool_name="p")
    for index, agent_id in enumerate(agents):
        admission.submit(Request(agent_id, 40, 10, 7, 0.0, index, 0.0))
    return admission


def outbox(admission: LeasedAdmission) -> list[tuple[str, str]]:
    return [
        (kind, item if isinstance(item, str) else item.lease) for kind, item in admission.outbox
    ]


def test_requests_get_lease_ids_and_grants_start_agents_in_grant_order() -> None:
    admission = leased("a", "b")
    assert outbox(admission) == [("request", "a#1"), ("request", "b#2")]
    assert admission.admit(0.0) == []
    assert admission.accept(PoolGrant("p", ["b#2", "a#1"]))
    assert admission.admit(1.5) == ["b", "a"]
    assert admission.waited == {"b": 1.5, "a": 1.5}
    assert admission.peak_cpu == 80


def test_a_grant_for_a_released_lease_goes_back() -> None:
    """Released while its grant was on the way: the pool gets the lease back; a re-request of
    the same agent has a new lease id, so the old grant cannot start it."""
    admission = leased("a")
    admission.release("a")
    admission.submit(Request("a", 40, 10, 7, 0.0, 0, 1.0))
    admission.outbox.clear()
    assert not admission.accept(PoolGrant("p", ["a#1"]))
    assert outbox(admission) == [("release", "a#1")]
    assert admission.admit(2.0) == []
    assert admission.accept(PoolGrant("p", ["a#2"]))
    assert admission.admit(2.0) == ["a"]


def test_a_grant_for_a_withheld_agent_waits_until_it_is_back() -> None:
    admission = leased("a", "b")
    withheld = [r for r in admission.waiting if r.agent_id == "b"]
    admission.waiting = [r for r in admission.waiting if r.agent_id != "b"]
    assert admission.accept(PoolGrant("p", ["a#1", "b#2"]))
    assert admission.admit(1.0) == ["a"]
    assert holds(admission, "b")
    admission.waiting += withheld
    assert admission.admit(2.0) == ["b"]
    # a repeated grant of a held lease changes nothing
    assert not admission.accept(PoolGrant("p", ["b#2"]))
    assert admission.admit(3.0) == []


def test_releasing_a_withheld_agent_gives_its_lease_back() -> None:
    admission = leased("a")
    admission.waiting = []
    admission.outbox.clear()
    assert holds(admission, "a")
    admission.release("a", 1.0)
    assert outbox(admission) == [("release", "a#1")]
    assert not holds(admission, "a")
