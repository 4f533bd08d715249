"""The spool that holds a release's tables on disk, the key order by bytes, content hashes
that depend on the rows only, and no folder left behind."""

from __future__ import annotations

import pyarrow as pa

from transforms.publish.contents import as_batch, in_key_order
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


def test_a_small_table_is_put_in_the_byte_order_of_its_key():
    batch = in_key_order(ETHNIC_GROUPS, [group(c) for c in CODES])
    assert batch["group_code"].to_pylist() == sorted(CODES, key=str.encode)  # A B Z a ab é


def test_the_content_hash_depends_on_the_rows_not_on_how_they_were_read():
    rows = [group(c, parent="A" if i % 2 else None) for i, c in enumerate(sorted(CODES))]
    one_part = [as_batch(ETHNIC_GROUPS, rows)]
    row_by_row = [as_batch(ETHNIC_GROUPS, [r]) for r in rows]
    with Spool() as spool:
        spool.put(ETHNIC_GROUPS, row_by_row)
        spooled = content_sha256(spool.batches(ETHNIC_GROUPS), ETHNIC_GROUPS)
    assert content_sha256(one_part, ETHNIC_GROUPS) == spooled
    assert content_sha256(row_by_row, ETHNIC_GROUPS) == spooled
    fewer = [as_batch(ETHNIC_GROUPS, rows[:-1])]
    assert content_sha256(fewer, ETHNIC_GROUPS) != spooled
    assert content_sha256([], ETHNIC_GROUPS) != content_sha256(fewer, ETHNIC_GROUPS)


def test_bytes_a_reader_leaves_under_a_null_do_not_change_the_content_hash():
    """A reader's Arrow output (DuckDB's, say) may keep whatever was in its memory under
    null values."""
    rows = [group("A"), group("B", parent="A")]
    clean = as_batch(ETHNIC_GROUPS, rows)
    validity = pa.py_buffer(bytes([0b10]))  # the first parent null, the second "A"
    offsets = pa.py_buffer(pa.array([0, 3, 4], pa.int32()).buffers()[1])
    parents = pa.Array.from_buffers(pa.string(), 2, [validity, offsets, pa.py_buffer(b"xyzA")])
    assert parents.to_pylist() == [None, "A"]
    index = clean.schema.get_field_index("parent_group_code")
    dirty = clean.set_column(index, clean.schema.field(index), parents)
    assert content_sha256([dirty], ETHNIC_GROUPS) == content_sha256([clean], ETHNIC_GROUPS)


def test_parts_come_back_as_they_were_put_and_closing_removes_the_folder():
    spool = Spool()
    spool.put(ETHNIC_GROUPS, [as_batch(ETHNIC_GROUPS, [group("A"), group("B")])])
    parts = [as_batch(ETHNIC_GROUPS, [group("C")]), as_batch(ETHNIC_GROUPS, [group("D")])]
    spool.put(ETHNIC_GROUPS, parts)
    assert list(spool.batches(ETHNIC_GROUPS)) == parts and spool.rows(ETHNIC_GROUPS) == 2
    assert spool.table(ETHNIC_GROUPS)["group_code"].to_pylist() == ["C", "D"]
    spool.close()
    assert not spool.folder.exists()


def test_content_hashes_are_made_as_content_scheme_2_says():
    """Every published manifest's hashes were made this way: a change here (the parts' size,
    pyarrow's stream format) would make every release look changed and publish revisions, so
    it must come with a new ``release.CONTENT_SCHEME`` and the rehash of older releases."""
    rows = [
        group(code, parent=None if i % 2 else "A") | {"group_order": i, "is_reference": i == 1}
        for i, code in enumerate(["A", "B", "C"])
    ]
    rows = [r | {"breakdown": "ethnicity_5"} for r in rows]
    assert content_sha256([as_batch(ETHNIC_GROUPS, rows)], ETHNIC_GROUPS) == (
        "73477ca29f5ceafd21857a3a673cf227e534144ede03f753dbd0160266d26f32"
    )
