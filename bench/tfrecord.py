"""Read NAS-Bench-101's official ``nasbench_only108.tfrecord`` (or ``nasbench_full.tfrecord``) without TensorFlow.

TFRecord framing (TensorFlow's ``tf_record_iterator``), per record: the payload length as a little-endian
uint64, the masked CRC-32C of those 8 bytes (uint32), the payload, the masked CRC-32C of the payload. The
mask is ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` mod 2^32; CRC-32C is the Castagnoli CRC (reflected
polynomial 0x82f63b78), which Python's ``zlib`` lacks, so it is computed here, vectorised over records.

NB101 payload (``nasbench/api.py``): the UTF-8 JSON list ``[module_hash, epochs, raw_adjacency,
raw_operations, raw_metrics]``; ``raw_adjacency`` is the row-major 0/1 digits of the (pruned) matrix,
``raw_operations`` the comma-separated vertex labels, ``raw_metrics`` the base64 of a serialized
``nasbench.ModelMetrics`` protobuf (``lib/model_metrics.proto``): field 1 repeated ``EvaluationData``
(1 current_epoch, 2 training_time, 3 train_accuracy, 4 validation_accuracy, 5 test_accuracy: doubles;
6 checkpoint_path: string), 2 ``trainable_parameters`` (int32), 3 ``total_time`` (double). One record per
(cell, epoch budget, repeat); the API reads the final metrics from ``evaluation_data[2]``, the last of the
three evaluations (start, half-way, end), which :attr:`Nb101Record.final` is.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class TFRecordError(ValueError):
    """A TFRecord file that cannot be read: the one-line message names the file and the record's byte offset."""


# ----------------------------------------------------------------------------- CRC-32C


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


_CRC_TABLE = _crc_table()
_MASK_DELTA = 0xA282EAD8
_CHUNK_RECORDS = 1 << 16


def crc32c(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """CRC-32C of the byte ranges ``data[start:start + length]``, one uint32 per range.

    Byte-serial over the longest range, vectorised across ranges (the ranges are processed longest first,
    so step ``i`` updates the prefix of ranges longer than ``i``); chunks of 65,536 ranges bound the memory.
    """
    data = np.asarray(data, dtype=np.uint8)
    starts, lengths = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.uint32)
    for lo in range(0, len(starts), _CHUNK_RECORDS):
        order = np.argsort(-lengths[lo:lo + _CHUNK_RECORDS], kind="stable")
        chunk_starts, chunk_lengths = starts[lo:lo + _CHUNK_RECORDS][order], lengths[lo:lo + _CHUNK_RECORDS][order]
        crc = np.full(len(order), 0xFFFFFFFF, dtype=np.uint32)
        active = len(order)
        for i in range(int(chunk_lengths[0]) if len(order) else 0):
            while chunk_lengths[active - 1] <= i:
                active -= 1
            state = crc[:active]
            crc[:active] = _CRC_TABLE[(state ^ data[chunk_starts[:active] + i]) & 0xFF] ^ (state >> 8)
        out[lo + order] = crc ^ np.uint32(0xFFFFFFFF)
    return out


def _mask(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint64)
    return ((((crc >> np.uint64(15)) | (crc << np.uint64(17))) & np.uint64(0xFFFFFFFF)) + np.uint64(_MASK_DELTA)) \
        & np.uint64(0xFFFFFFFF)


# ----------------------------------------------------------------------------- framing


def read_records(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, payload)`` of every record of a TFRecord file, after checking every CRC.

    The whole file is framed and checked before the first record is yielded: a truncated or corrupt file
    raises :class:`TFRecordError` naming the file and the offset of the first bad record.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise TFRecordError(f"{path}: cannot read the TFRecord file ({exc.strerror or exc})") from None
    offsets, lengths, truncated = _frame(data)
    bad = _first_crc_mismatch(data, offsets, np.full(len(offsets), 8), offsets + 8)
    if bad is not None:
        raise TFRecordError(f"{path}: corrupt TFRecord at byte offset {offsets[bad]} (record {bad}): the CRC of "
                            f"its length field does not match")
    if truncated is not None:
        raise TFRecordError(f"{path}: truncated TFRecord at byte offset {truncated} (record {len(offsets) - 1}): "
                            f"the file ends inside the record")
    bad = _first_crc_mismatch(data, offsets + 12, lengths, offsets + 12 + lengths)
    if bad is not None:
        raise TFRecordError(f"{path}: corrupt TFRecord at byte offset {offsets[bad]} (record {bad}): the CRC of "
                            f"its payload does not match")
    for offset, length in zip(offsets.tolist(), lengths.tolist(), strict=True):
        yield offset, data[offset + 12:offset + 12 + length].tobytes()


def _frame(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Record offsets and payload lengths by the length fields, and the offset of a record the file ends
    inside (``None`` if none); such a record is the last entry of the offsets, with its length field."""
    size, offset = len(data), 0
    raw = memoryview(data)
    offsets, lengths = [], []
    while offset < size:
        offsets.append(offset)
        if size - offset < 12:
            lengths.append(0)
            return np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64), offset
        (length,) = struct.unpack_from("<Q", raw, offset)
        lengths.append(min(length, size))  # a corrupt length may not fit an int64
        if length > size - offset - 16:
            return np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64), offset
        offset += 16 + length
    return np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64), None


def _first_crc_mismatch(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                        crc_at: np.ndarray) -> int | None:
    """Index of the first range whose masked CRC-32C differs from the uint32 stored at ``crc_at``."""
    readable = crc_at + 4 <= len(data)
    starts, lengths, crc_at = starts[readable], lengths[readable], crc_at[readable]
    stored = np.ascontiguousarray(data[crc_at[:, None] + np.arange(4)]).view("<u4")[:, 0]
    wrong = np.flatnonzero(_mask(crc32c(data, starts, lengths)) != stored)
    return int(wrong[0]) if len(wrong) else None


# ----------------------------------------------------------------------------- protobuf


@dataclass(frozen=True)
class Evaluation:
    """One ``EvaluationData``: the metrics at one point of training (accuracies as fractions)."""

    current_epoch: float
    training_time: float
    train_accuracy: float
    validation_accuracy: float
    test_accuracy: float


def _varint(blob: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(blob) or shift > 63:
            raise ValueError("truncated varint")
        byte = blob[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def _message(blob: bytes, pos: int, end: int) -> list[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of the serialized message ``blob[pos:end]``: a varint's int, a
    fixed64's double, a fixed32's float (the only fixed-width types NB101's messages use), a length-delimited
    field's ``(start, end)`` offsets in ``blob``."""
    fields: list[tuple[int, int, Any]] = []
    while pos < end:
        key = blob[pos]
        key, pos = (key, pos + 1) if key < 0x80 else _varint(blob, pos)  # one-byte keys: the common case
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(blob, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise ValueError(f"truncated protobuf field {number}")
            value = struct.unpack_from("<d" if wire == 1 else "<f", blob, pos)[0]
            pos += size
        elif wire == 2:
            size, pos = _varint(blob, pos)
            if pos + size > end:
                raise ValueError(f"truncated protobuf field {number}")
            value = (pos, pos + size)
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {number})")
        fields.append((number, wire, value))
    return fields


def decode_model_metrics(blob: bytes) -> tuple[int, float, tuple[Evaluation, ...]]:
    """``(trainable_parameters, total_time, evaluations)`` of a serialized ``ModelMetrics`` message; fields
    missing from a message read as protobuf's default 0, unknown fields are skipped."""
    params, total_time, evaluations = 0, 0.0, []
    for number, wire, value in _message(blob, 0, len(blob)):
        if number == 1 and wire == 2:
            metrics = [0.0] * 5  # EvaluationData fields 1-5, all doubles
            for sub_number, sub_wire, sub_value in _message(blob, *value):
                if 1 <= sub_number <= 5:
                    if sub_wire != 1:
                        raise ValueError(f"EvaluationData field {sub_number} should be a double, got wire type "
                                         f"{sub_wire}")
                    metrics[sub_number - 1] = sub_value
            evaluations.append(Evaluation(*metrics))
        elif number == 2 and wire == 0:
            params = value - (1 << 64) if value >= 1 << 63 else value  # int32: negatives are 10-byte varints
        elif number == 3 and wire == 1:
            total_time = value
    return params, total_time, tuple(evaluations)


# ----------------------------------------------------------------------------- NB101 records


@dataclass(frozen=True)
class Nb101Record:
    """One training run of one cell, as the official file stores it."""

    module_hash: str
    epochs: int
    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]
    trainable_parameters: int
    evaluations: tuple[Evaluation, ...]

    @property
    def final(self) -> Evaluation:
        """The evaluation at the end of training (``evaluation_data[2]`` in the official files)."""
        return self.evaluations[-1]


def read_nb101(path: str | os.PathLike) -> Iterator[Nb101Record]:
    """Every record of an official NAS-Bench-101 ``.tfrecord`` file, in file order.

    :class:`TFRecordError` (naming the file and the record's byte offset) for a corrupt file, a payload that
    is not the JSON list above, a malformed matrix or protobuf, or a record without evaluations.
    """
    for offset, payload in read_records(path):
        try:
            module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = json.loads(payload.decode("utf-8"))
            size = int(round(len(raw_adjacency) ** 0.5))
            if size * size != len(raw_adjacency) or set(raw_adjacency) - {"0", "1"}:
                raise ValueError(f"adjacency {raw_adjacency!r} is not a square 0/1 matrix")
            params, _, evaluations = decode_model_metrics(base64.b64decode(raw_metrics, validate=True))
            if not evaluations:
                raise ValueError("its metrics hold no evaluation")
            yield Nb101Record(
                module_hash=str(module_hash), epochs=int(epochs),
                matrix=tuple(tuple(map(int, raw_adjacency[i:i + size])) for i in range(0, size * size, size)),
                ops=tuple(str(raw_operations).split(",")), trainable_parameters=params, evaluations=evaluations,
            )
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TFRecordError(f"{Path(path)}: record at byte offset {offset} is not a NAS-Bench-101 record "
                                f"({message})") from None
