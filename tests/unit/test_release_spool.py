"""The spool that holds a release's tables on disk: key order by bytes, content hashes that
depend on the rows only, and no folder left behind."""

from __future__ import annotations

import pyarrow as pa

from transforms.publish.contents import as_batch
from transforms.publish.parquet import content_sha256
from transforms.publish.spool import Spool
from transforms.publish.tables import ETHNIC_GROUPS


def group(code: str, parent: str | None = None) -> dict:
    return {
        "breakdown": "ethnicity_16",
        "group_code": code,
        "group_label": f"label {code}",
        "group_order": 1,
        "parent_group_code": parent,
        "is_reference": False,
    }


CODES = ["é", "a", "Z", "B", "ab", "A"]


def test_rows_come_back_in_the_byte_order_of_their_key_whatever_order_they_went_in():
    with Spool() as spool:
        spool.put(ETHNIC_GROUPS, [as_batch(ETHNIC_GROUPS, [group(c)]) for c in CODES])
        codes = spool.table(ETHNIC_GROUPS)["group_code"].to_pylist()
    assert codes == sorted(CODES, key=lambda c: c.encode())  # A B Z a ab é, not a locale's
    assert spool.rows(ETHNIC_GROUPS) == len(CODES)


def test_the_content_hash_depends_on_the_rows_not_on_how_they_were_read():
    rows = [group(c, parent="A" if i % 2 else None) for i, c in enumerate(sorted(CODES))]
    one_part = [as_batch(ETHNIC_GROUPS, rows)]
    row_by_row = [as_batch(ETHNIC_GROUPS, [r]) for r in rows]
    with Spool() as spool:  # DuckDB's Arrow leaves what it likes under the null parents
        spool.put(ETHNIC_GROUPS, reversed(row_by_row))
        spooled = content_sha256(spool.batches(ETHNIC_GROUPS), ETHNIC_GROUPS)
    assert content_sha256(one_part, ETHNIC_GROUPS) == spooled
    assert content_sha256(row_by_row, ETHNIC_GROUPS) == spooled
    fewer = [as_batch(ETHNIC_GROUPS, rows[:-1])]
    assert content_sha256(fewer, ETHNIC_GROUPS) != spooled
    assert content_sha256([], ETHNIC_GROUPS) != content_sha256(fewer, ETHNIC_GROUPS)


def test_bytes_a_reader_leaves_under_a_null_do_not_change_the_content_hash():
    """DuckDB's Arrow output keeps whatever was in its memory under null values."""
    rows = [group("A"), group("B", parent="A")]
    clean = as_batch(ETHNIC_GROUPS, rows)
    validity = pa.py_buffer(bytes([0b10]))  # the first parent null, the second "A"
    offsets = pa.py_buffer(pa.array([0, 3, 4], pa.int32()).buffers()[1])
    parents = pa.Array.from_buffers(pa.string(), 2, [validity, offsets, pa.py_buffer(b"xyzA")])
    assert parents.to_pylist() == [None, "A"]
    index = clean.schema.get_field_index("parent_group_code")
    dirty = clean.set_column(index, clean.schema.field(index), parents)
    assert content_sha256([dirty], ETHNIC_GROUPS) == content_sha256([clean], ETHNIC_GROUPS)


def test_putting_a_table_again_replaces_it_and_closing_removes_the_folder():
    spool = Spool()
    folder = spool.folder
    spool.put(ETHNIC_GROUPS, [as_batch(ETHNIC_GROUPS, [group("A"), group("B")])])
    spool.put(ETHNIC_GROUPS, [as_batch(ETHNIC_GROUPS, [group("C")])])
    assert spool.table(ETHNIC_GROUPS)["group_code"].to_pylist() == ["C"]
    assert isinstance(spool.table(ETHNIC_GROUPS), pa.Table) and folder.exists()
    spool.close()
    assert not folder.exists()
