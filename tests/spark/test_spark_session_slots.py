"""The installation's Spark session slots, without a server: who may take which slot."""

from __future__ import annotations

import time

import pytest

from connector_engine.spark import sessions
from connector_engine.spark.sessions import SessionPool, SessionPoolBusy

REMOTE = "sc://localhost:41234/;token=abc"


@pytest.fixture
def released(monkeypatch) -> list[str]:
    """The URLs of the sessions the pool ends on the server (no server here)."""
    urls: list[str] = []
    monkeypatch.setattr(sessions, "release_session", urls.append)
    return urls


def lease_once(pool: SessionPool, tenant: str) -> str:
    with pool.lease(REMOTE, tenant=tenant) as lease:
        return lease.session_id


def test_a_tenant_reuses_its_own_session_then_takes_an_unused_slot(tmp_path, released):
    pool = SessionPool(tmp_path, 3, per_tenant=2)
    first = lease_once(pool, "a")
    assert lease_once(pool, "a") == first
    with pool.lease(REMOTE, tenant="a") as busy:
        second = lease_once(pool, "a")
    assert busy.session_id == first and second != first
    assert [slot.tenant for slot in pool.slots()] == ["a", "a", ""]
    assert not released


def test_a_tenant_evicts_the_least_recently_used_free_session_of_another(tmp_path, released):
    pool = SessionPool(tmp_path, 2, per_tenant=1)
    first = lease_once(pool, "a")
    second = lease_once(pool, "b")
    third = lease_once(pool, "c")  # a's slot, used longest ago

    assert len({first, second, third}) == 3
    assert [(slot.tenant, slot.session_id) for slot in pool.slots()] == [
        ("c", third),
        ("b", second),
    ]
    assert released == [sessions.url_with_session(REMOTE, first)]


def test_a_leased_session_and_the_per_tenant_bound_are_kept(tmp_path, released):
    pool = SessionPool(tmp_path, 2, per_tenant=1, wait_timeout_s=0.2)
    with pool.lease(REMOTE, tenant="a"):
        with pytest.raises(SessionPoolBusy, match="1 at once, the installation 2"):
            lease_once(pool, "a")  # a free slot remains, but not for a
        with pool.lease(REMOTE, tenant="b"), pytest.raises(SessionPoolBusy):
            lease_once(pool, "c")  # both slots are leased: neither is evicted
    assert not released


def test_an_idle_slot_gets_a_new_session_id(tmp_path, released):
    pool = SessionPool(tmp_path, 1, idle_s=0.2)
    first = lease_once(pool, "a")
    time.sleep(0.3)
    assert lease_once(pool, "a") != first
    time.sleep(0.3)
    lease_once(pool, "b")  # the server ended a's idle session already: nothing to release
    assert not released
