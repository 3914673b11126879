"""The API-key check every request makes first (``SqlStore.check_api_key``): a key found valid is trusted for
a few seconds; a revocation through the same store is seen at once, one by another process within the
trust's ``ttl``; an unknown key is never remembered."""

from __future__ import annotations

from sqlalchemy import Engine

from infra.db.session import session_factory
from infra.db.store import SqlStore
from infra.db.store.api_keys import TrustedKeys


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_revocation_through_the_store_is_seen_at_once(engine: Engine) -> None:
    store = SqlStore(session_factory(engine))
    with store.begin() as tx:
        key = tx.api_keys.create("shop-a")
    assert store.check_api_key(key) == "shop-a"
    assert store.check_api_key(key, purpose="admin") is None  # another door
    with store.begin() as tx:
        assert tx.api_keys.revoke(key)
    assert store.check_api_key(key) is None


def test_a_revocation_by_another_process_is_seen_within_the_ttl(engine: Engine) -> None:
    clock = Clock()
    server = SqlStore(session_factory(engine), TrustedKeys(ttl=5.0, clock=clock))
    cli = SqlStore(session_factory(engine))  # another process on the same database
    with cli.begin() as tx:
        key = tx.api_keys.create("shop-a")
    assert server.check_api_key(key) == "shop-a"
    with cli.begin() as tx:
        assert tx.api_keys.revoke(key)
    clock.now = 4.9
    assert server.check_api_key(key) == "shop-a"  # trusted a little longer
    clock.now = 5.0
    assert server.check_api_key(key) is None


def test_an_unknown_key_is_not_remembered(engine: Engine) -> None:
    store = SqlStore(session_factory(engine))
    assert store.check_api_key("pv_not-yet") is None
    with store.begin() as tx:
        key = tx.api_keys.create("shop-a")
    assert store.check_api_key(key) == "shop-a"
    assert store.check_api_key("pv_not-yet") is None


def test_a_check_while_a_revocation_commits_does_not_trust_the_key_again(engine: Engine) -> None:
    """A request checked while the revocation's transaction is still open reads the key as valid (the
    UPDATE is not committed yet) and would trust it for another ttl; the revocation drops it again when
    it commits (found in review)."""
    store = SqlStore(session_factory(engine))
    with store.begin() as tx:
        key = tx.api_keys.create("shop-a")
    assert store.check_api_key(key) == "shop-a"
    with store.begin() as tx:
        assert tx.api_keys.revoke(key)
        assert store.check_api_key(key) == "shop-a"  # another request, before the revocation commits
    assert store.check_api_key(key) is None
