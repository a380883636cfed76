"""A Push call's fast path for a batch encoded like the call's last one. Pure.

A service pushes the same series in the same order batch after batch, so its
encoded batches differ only in the values. Checking names and labels again,
and walking every sample through the protobuf API, is most of what a batch
costs the collector; a template skips both.

Rules:
- A template is made from the encoding of a batch that passed full
  validation (`collector.validation`) when every sample in it is a gauge or
  counter with a number, none a removal. Its top-level fields must come in
  field order (source, then the samples; every protobuf library writes them
  so): the bytes up to the end of the last sample are the template's body,
  each sample's 8 number bytes (Sample.number, fixed64) its slots.
- A later batch matches when its bytes equal the body outside the slots;
  the fields after the samples (time_unix_ms, instance) are parsed as usual.
  Equal bytes parse to equal fields, so a match has exactly the template's
  series, and only its numbers are new: it is a `NumberBatch`, whose keys
  and descriptors are the template's own tuples (so `SourceState` knows the
  series without looking them up).
- A match's numbers are checked as validation checks them (finite; a
  counter's not negative). A number that fails, or any batch that does not
  match, goes through full validation, which names what is wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from math import isfinite

from collector.series import COUNTER, Descriptor, NumberBatch, SeriesKey, SeriesSample

__all__ = ["BatchTemplate", "read_varint", "split_fields"]

_SOURCE = 1  # PushRequest.source
_SAMPLES = 2  # PushRequest.samples
_NUMBER = 6  # Sample.number, fixed64
_HISTOGRAM = 7  # Sample.histogram
_NUMBER_TAG = _NUMBER << 3 | 1


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it; ValueError if cut short."""
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def split_fields(
    data: bytes, start: int = 0, end: int | None = None
) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of every field in
    `data[start:end]`; ValueError for bytes that are not a protobuf message
    (groups included)."""
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos < end:
        key, pos = read_varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, after = read_varint(data, pos)
        elif wire == 1:
            after = pos + 8
        elif wire == 2:
            length, pos = read_varint(data, pos)
            after = pos + length
        elif wire == 5:
            after = pos + 4
        else:
            raise ValueError(f"wire type {wire} is not supported")
        if after > end:
            raise ValueError("a field runs past the end of its message")
        out.append((key >> 3, wire, pos, after))
        pos = after
    return out


class BatchTemplate:
    """The series of one validated batch, and where its numbers sit in its encoding."""

    def __init__(
        self,
        body: bytes,
        slots: Sequence[int],
        keys: Sequence[SeriesKey],
        descriptors: Sequence[Descriptor],
    ) -> None:
        self.body = body
        self.keys = tuple(keys)
        self.descriptors = tuple(descriptors)
        self.counters = tuple(i for i, d in enumerate(descriptors) if d.kind == COUNTER)
        ends = [0, *(slot + 8 for slot in slots)]
        layout = "".join(f"{slot - end}sd" for end, slot in zip(ends, slots, strict=False))
        self._layout = struct.Struct(f"<{layout}{len(body) - ends[-1]}s")
        """The bytes between the numbers and the numbers, alternately: one unpack."""
        self._gaps = self._layout.unpack_from(body)[0::2]

    @classmethod
    def of(cls, data: bytes, samples: Sequence[SeriesSample]) -> BatchTemplate | None:
        """A template of an encoded batch and its validated samples; None when
        the batch does not qualify (see the rules) or is not in field order."""
        if not samples or any(s.remove or type(s.value) is not float for s in samples):
            return None
        try:
            fields = split_fields(data)
        except ValueError:
            return None
        slots: list[int] = []
        end = 0
        for number, _, start, after in fields:
            if number == _SOURCE and not slots:
                end = after
                continue
            if number != _SAMPLES:
                break
            slot = _number_slot(data, start, after)
            if slot is None:
                return None
            slots.append(slot)
            end = after
        if len(slots) != len(samples):
            return None
        return cls(data[:end], slots, [s.key for s in samples], [s.descriptor for s in samples])

    def match(self, data: bytes) -> tuple[NumberBatch, bytes] | None:
        """The batch's numbers and the bytes after them, if `data` matches and its
        numbers pass; None otherwise (the caller validates it in full)."""
        size = len(self.body)
        if len(data) < size:
            return None
        parts = self._layout.unpack_from(data)
        if parts[0::2] != self._gaps:
            return None
        numbers = parts[1::2]
        # A sum is finite only if every term is (an overflowing sum of finite
        # numbers is validated in full, which accepts it).
        if not isfinite(sum(numbers)) or (
            self.counters and any(numbers[i] < 0 for i in self.counters)
        ):
            return None
        return NumberBatch(self.keys, self.descriptors, numbers), data[size:]


def _number_slot(data: bytes, start: int, end: int) -> int | None:
    """Where a Sample's number payload starts, if it has one and no histogram."""
    slot = None
    for number, wire, value_start, _ in split_fields(data, start, end):
        if number == _NUMBER:
            if wire != 1 or data[value_start - 1] != _NUMBER_TAG:
                return None
            slot = value_start
        elif number == _HISTOGRAM:
            return None
    return slot
