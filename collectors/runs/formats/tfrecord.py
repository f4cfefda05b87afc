"""The TFRecord framing of TensorBoard event files, read straight from the file's bytes.

A record is: the data's length (u64, little-endian), the masked CRC-32C of those 8 bytes (u32),
the data, the masked CRC-32C of the data (u32). `RecordFile.read()` returns the complete records
after the last one read, checked as TensorBoard's own reader checks them: a record cut off at the
end of the file waits for the rest; a record whose CRC does not match stops the reading there, and
the next read starts from it again (TensorBoard's loader does the same). The CRC is google-crc32c's
C implementation (TensorBoard's stub reader computes it in pure Python, most of its cost), and the
file is read in large chunks, so a record costs a few hundred nanoseconds before it is parsed.
"""

from __future__ import annotations

import os
import struct

import google_crc32c

MASK_DELTA = 0xA282EAD8
HEADER = struct.Struct("<QI")  # length, masked CRC of the length
FOOTER = struct.Struct("<I")  # masked CRC of the data
CHUNK_BYTES = 16 << 20


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


class RecordFile:
    """The records of one event file, read from an offset onwards."""

    def __init__(self, path: str, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.offset = 0  # bytes of complete, checked records read so far
        self.problem: str | None = None  # why the last read stopped before the end of the file

    def read(self, max_records: int) -> tuple[list[bytes], bool]:
        """(records, more): the next complete records, at most `max_records`; `more`: unread records remain."""
        with open(self.path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            data = os.pread(f.fileno(), min(self.chunk_bytes, size - self.offset), self.offset)
            records, used = self._split(data, max_records)
            if not records and used == 0 and len(data) >= HEADER.size and self.problem is None:
                # One record longer than a chunk: read it whole.
                length = HEADER.unpack_from(data)[0]
                data = os.pread(f.fileno(), HEADER.size + length + FOOTER.size, self.offset)
                records, used = self._split(data, max_records)
        self.offset += used
        return records, bool(records) and self.offset < size and self.problem is None

    def _split(self, data: bytes, max_records: int) -> tuple[list[bytes], int]:
        records: list[bytes] = []
        append = records.append
        unpack_header, unpack_footer, crc32c = HEADER.unpack_from, FOOTER.unpack_from, google_crc32c.value
        pos, end_of_data = 0, len(data)
        self.problem = None
        while pos + HEADER.size <= end_of_data and len(records) < max_records:
            length, length_crc = unpack_header(data, pos)
            crc = crc32c(data[pos : pos + 8])  # masked_crc32c, inlined: this loop runs once a record
            if (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF != length_crc:
                self.problem = f"record at byte {self.offset + pos} failed its header CRC check"
                break
            start = pos + HEADER.size
            end = start + length
            if end + FOOTER.size > end_of_data:
                break  # cut off: the rest is still being written (or is beyond this chunk)
            record = data[start:end]
            crc = crc32c(record)
            if (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF != unpack_footer(data, end)[0]:
                self.problem = f"record at byte {self.offset + pos} failed its data CRC check"
                break
            append(record)
            pos = end + FOOTER.size
        return records, pos
