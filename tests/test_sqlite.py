"""The state database (server/sqlite.py): each thread keeps its connection between transactions, and that must
never show stale data, break a nested transaction, or cross a fork."""

from __future__ import annotations

import multiprocessing
import threading

import anyio
import pytest

from cloudjobs_mcp.server.sqlite import Database

SCHEMA = ["CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)"]


def value(db: Database, key: str) -> str | None:
    with db.read() as conn:
        row = conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
    return row[0] if row else None


def put(db: Database, key: str, v: str) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", (key, v))


@pytest.fixture
def db(tmp_path) -> Database:
    d = Database(tmp_path / "state.db")
    d.ensure_schema(SCHEMA)
    return d


def test_a_kept_connection_sees_what_another_server_wrote_since(db, tmp_path):
    other = Database(tmp_path / "state.db")  # a second server on the same state directory
    put(db, "quote", "open")
    assert value(db, "quote") == "open"  # db's connection is now kept, with a snapshot behind it
    put(other, "quote", "used")
    assert value(db, "quote") == "used"


def test_a_transaction_inside_another_on_the_same_thread_gets_its_own_connection(db):
    with db.write() as outer:
        outer.execute("INSERT INTO kv (k, v) VALUES ('a', '1')")
        assert value(db, "a") is None  # the nested read sees only committed data, and does not fail
    assert value(db, "a") == "1"


def test_a_failed_transaction_rolls_back_and_the_next_one_works(db):
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute("INSERT INTO kv (k, v) VALUES ('x', 'lost')")
        raise RuntimeError("boom")
    assert value(db, "x") is None
    put(db, "x", "kept")
    assert value(db, "x") == "kept"


@pytest.mark.anyio
async def test_coroutines_that_await_inside_a_transaction_do_not_share_it(db):
    inside = anyio.Event()

    async def slow_writer() -> None:
        with db.read() as conn:  # holds the thread's kept connection across an await
            conn.execute("SELECT count(*) FROM kv").fetchone()
            inside.set()
            await anyio.sleep(0.05)
            conn.execute("SELECT count(*) FROM kv").fetchone()

    async def other() -> None:
        await inside.wait()
        put(db, "k", "v")  # would be "cannot start a transaction within a transaction" on a shared one
        assert value(db, "k") == "v"

    async with anyio.create_task_group() as tg:
        tg.start_soon(slow_writer)
        tg.start_soon(other)
    assert value(db, "k") == "v"


def test_threads_each_use_their_own_connection(db):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                put(db, f"t{n}", str(i))
                assert value(db, f"t{n}") == str(i)
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [value(db, f"t{n}") for n in range(4)] == ["49"] * 4


def _forked_child_uses_parents_db(db: Database) -> None:
    put(db, "forked", "yes")  # the parent's Database object, inherited through fork


def test_a_forked_child_opens_its_own_connection(db):
    put(db, "parent", "1")  # the parent's thread now keeps a connection
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_forked_child_uses_parents_db, args=(db,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert value(db, "forked") == "yes"
    assert value(db, "parent") == "1"
