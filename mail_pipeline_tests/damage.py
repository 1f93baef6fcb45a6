"""Damage a lake file the way a bad disk block does (bytes zeroed inside one column's pages), or
the way an interrupted copy or a stray writer does (cut short, overwritten with garbage); on a
local disk or on S3 alike (a `Location`)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from mail_pipeline.storage.objects import Location


def truncate(path: Location) -> None:
    """Keep the first half of the file: its footer (schema, offsets, checksums' places) is gone."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Location) -> None:
    """Replace the file with as many random bytes: not Parquet at all any more."""
    path.write_bytes(os.urandom(len(path.read_bytes())))


def damage_column(path: Location, column: str, length: int = 16) -> None:
    """Zero `length` bytes inside `column`'s values; the other columns stay readable.

    The values live in the dictionary page when there is one, else in the data pages; the
    page headers carry min/max statistics no reader needs, so the bytes hit go near the end of
    the values' region, past any header."""
    data = bytearray(path.read_bytes())
    group = pq.ParquetFile(pa.BufferReader(bytes(data))).metadata.row_group(0)
    chunk = next(
        c for c in (group.column(i) for i in range(group.num_columns)) if c.path_in_schema == column
    )
    if chunk.has_dictionary_page:
        first, end = chunk.dictionary_page_offset, chunk.data_page_offset
    else:
        first, end = chunk.data_page_offset, chunk.data_page_offset + chunk.total_compressed_size
    start = first + (end - first) * 3 // 4
    data[start : start + length] = bytes(length)
    path.write_bytes(bytes(data))
