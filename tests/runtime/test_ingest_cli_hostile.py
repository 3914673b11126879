"""`posventa ingest` on hostile files: every bad record is a numbered rejection, the good ones are applied,
and nothing is a traceback — bytes that are not UTF-8, NUL characters, instants out of range, amounts
beyond the column, CR/LF in names, numbers of 5000 digits, nesting deeper than the JSON reader goes,
CSV values spanning lines, a value the database itself refuses."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from test_ingest_cli import run

T = "2026-03-02T10:00:00+00:00"


def good(n: int) -> bytes:
    event = {"id": f"g{n}", "type": "ticket.opened", "occurred_at": T, "customer_id": f"c{n}"}
    return json.dumps({**event, "data": {"ticket_id": f"T{n}"}}).encode()


def placed(n: int, **customer: object) -> bytes:
    event = {
        "id": f"p{n}",
        "type": "order.placed",
        "occurred_at": T,
        "customer": {"id": f"p{n}", **customer},
        "order": {"id": f"o{n}", "total": 10},
    }
    return json.dumps(event).encode()


#: (line, what the report must say about it) for the bad lines of the JSONL file below.
BAD_LINES: list[tuple[bytes, str]] = [
    (
        b'{"id": "b\xff\xfe", "type": "purchase", "occurred_at": "' + T.encode() + b'", "customer_id": "c"}',
        "id:",
    ),
    (json.dumps({"id": "b\x00", "type": "purchase", "occurred_at": T, "customer_id": "c"}).encode(), "id:"),
    (placed(1, name="Ana\r\nBcc: x@example.com"), "customer.name: contains a line break"),
    (placed(2, name="Ana\x00"), "customer.name: contains a control character (U+0000)"),
    (
        json.dumps(
            {"id": "b3", "type": "purchase", "occurred_at": "0001-01-01T00:00:00+01:00", "customer_id": "c"}
        ).encode(),
        "occurred_at: must be between the years",
    ),
    (
        json.dumps(
            {"id": "b4", "type": "purchase", "occurred_at": T, "customer_id": "c", "data": {"total": 1e13}}
        ).encode(),
        "data.total:",
    ),
    (b'{"id": "b5", "n": ' + b"9" * 5000 + b"}", "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (
        b'{"id": "b6", "type": "purchase", "occurred_at": "'
        + T.encode()
        + b'", "customer_id": "c", "x": NaN}',
        "x:",
    ),
    (json.dumps({"id": "b7", "type": "\x1b[31mred", "occurred_at": T, "customer_id": "c"}).encode(), "type:"),
    (b'{"id": "b8", "type": "\x1b[31mred"}', "not JSON: Invalid control character at column 23"),
    (b"\xff\xfe\xfd", "not JSON"),
]


def test_a_hostile_jsonl_file_is_reported_line_by_line(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert run(["db", "upgrade"], db).returncode == 0
    lines = [good(0)]
    for n, (line, _) in enumerate(BAD_LINES, 1):
        lines += [line, good(n)]
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = run(["ingest", str(src)], db)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"{len(BAD_LINES) + 1} accepted, 0 duplicates, {len(BAD_LINES)} rejected" in out.stdout
    report = {int(line.split(":")[1]): line for line in out.stderr.splitlines() if line.startswith(f"{src}:")}
    assert sorted(report) == [2 * n for n in range(1, len(BAD_LINES) + 1)], out.stderr
    for n, (_, says) in enumerate(BAD_LINES, 1):
        assert says in report[2 * n], (says, report[2 * n])
    assert "\x1b" not in out.stderr  # a file's terminal escapes are shown escaped
    with sqlite3.connect(db) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM events")}
    assert ids == {f"g{n}" for n in range(len(BAD_LINES) + 1)}


def test_a_hostile_csv_file_numbers_records_by_their_first_line(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert run(["db", "upgrade"], db).returncode == 0
    src = tmp_path / "events.csv"
    header = b"id,type,occurred_at,customer_id,data\n"
    rows = [
        b"g1,ticket.opened," + T.encode() + b',c1,"{""ticket_id"": ""t1""}"\n',  # line 2
        b'"bad\nid",purchase,' + T.encode() + b",c1,\n",  # lines 3-4: LF inside a quoted id
        b"g2,ticket.opened," + T.encode() + b',c2,"{""ticket_id"": ""t2""}"\n',  # line 5
        b"b\xff,purchase," + T.encode() + b",c1,\n",  # line 6: not UTF-8
        b"b\x00,purchase," + T.encode() + b",c1,\n",  # line 7: NUL
        b"b8,purchase,0001-01-01T00:00:00+01:00,c1,\n",  # line 8
        b"b9,purchase," + T.encode() + b',c1,"{""total"": 1e13}"\n',  # line 9
        b"b10,purchase," + T.encode() + b',c1,"' + b"[" * 5000 + b'"\n',  # line 10: data not JSON
        b"g3,ticket.opened," + T.encode() + b',c3,"{""ticket_id"": ""t3""}"\n',  # line 11
    ]
    src.write_bytes(header + b"".join(rows))
    out = run(["ingest", str(src)], db)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "3 accepted, 0 duplicates, 6 rejected" in out.stdout, out.stdout + out.stderr
    lines = sorted(int(line.split(":")[1]) for line in out.stderr.splitlines() if line.startswith(f"{src}:"))
    assert lines == [3, 6, 7, 8, 9, 10], out.stderr
    assert f"{src}:9: rejected: data.total:" in out.stderr


def test_a_value_the_database_refuses_is_a_numbered_rejection(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert run(["db", "upgrade"], db).returncode == 0
    with sqlite3.connect(db) as conn:  # a rule of this database that Posventa's checks do not know
        conn.execute(
            "CREATE TRIGGER refuse_probe BEFORE INSERT ON customers WHEN NEW.name = 'Refused' "
            "BEGIN SELECT RAISE(ABORT, 'probe: name refused'); END"
        )
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"\n".join([good(1), placed(2, name="Refused"), good(3)]) + b"\n")
    out = run(["ingest", str(src)], db)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "2 accepted, 0 duplicates, 1 rejected" in out.stdout
    assert f"{src}:2: rejected: (event): the database refused this item (IntegrityError)" in out.stderr
    with sqlite3.connect(db) as conn:
        assert {row[0] for row in conn.execute("SELECT id FROM events")} == {"g1", "g3"}
        assert conn.execute("SELECT count(*) FROM customers WHERE id = 'p2'").fetchone() == (0,)
