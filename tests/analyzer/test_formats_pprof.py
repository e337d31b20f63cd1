"""pprof: the writer checked by an independent protobuf wire reader, and the reader fed hand-encoded profiles.

Neither direction uses greenflame's message descriptors on the test side, so a wrong field
number or wire type in ``analyzer/formats/_pprof_schema.py`` fails here.
"""

from __future__ import annotations

import gzip
import json
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest

from greenflame.analyzer.formats import dump_profile, pprof, read_profile
from greenflame.analyzer.model import Frame, Profile, ProfileError, SampleType

# -- a minimal protobuf wire codec ---------------------------------------------------

WireValue = Union[int, bytes]
Fields = List[Tuple[int, WireValue]]


def read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def parse(data: bytes) -> Fields:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    fields: Fields = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = read_varint(data, pos)
            fields.append((number, value))
        elif wire_type == 2:
            length, pos = read_varint(data, pos)
            fields.append((number, data[pos : pos + length]))
            pos += length
        else:
            raise AssertionError(f"unexpected wire type {wire_type} for field {number}")
    return fields


def ints(fields: Fields, number: int) -> List[int]:
    """A repeated integer field, packed or not."""
    out: List[int] = []
    for n, value in fields:
        if n != number:
            continue
        if isinstance(value, int):
            out.append(value)
            continue
        pos = 0
        while pos < len(value):
            item, pos = read_varint(value, pos)
            out.append(item)
    return out


def one(fields: Fields, number: int, default: int = 0) -> int:
    values = ints(fields, number)
    return values[-1] if values else default


def messages(fields: Fields, number: int) -> List[Fields]:
    return [parse(v) for n, v in fields if n == number and isinstance(v, bytes)]


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 negatives are ten-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: Union[int, bytes, str]) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def packed(number: int, values: List[int]) -> bytes:
    return field(number, b"".join(varint(v) for v in values))


# -- the writer, decoded independently ---------------------------------------------


def decode_profile(raw: bytes) -> Dict[str, Any]:
    """The parts of a pprof Profile greenflame writes, decoded with the field numbers of profile.proto."""
    top = parse(raw)
    strings = [v.decode() for n, v in top if n == 6 and isinstance(v, bytes)]
    functions = {one(f, 1): (strings[one(f, 2)], strings[one(f, 4)], one(f, 5)) for f in messages(top, 5)}
    locations = {one(loc, 1): [functions[one(line, 1)] for line in messages(loc, 4)] for loc in messages(top, 4)}
    samples = []
    for sample in messages(top, 2):
        leaf_first = [frame for location in ints(sample, 1) for frame in locations[location]]
        labels = {strings[one(label, 1)]: strings[one(label, 2)] for label in messages(sample, 3)}
        samples.append((tuple(reversed(leaf_first)), ints(sample, 2), labels))
    period_type = messages(top, 11)[0]
    return {
        "strings": strings,
        "sample_types": [(strings[one(t, 1)], strings[one(t, 2)]) for t in messages(top, 1)],
        "samples": samples,
        "time_nanos": one(top, 9),
        "duration_nanos": one(top, 10),
        "period_type": (strings[one(period_type, 1)], strings[one(period_type, 2)]),
        "period": one(top, 12),
        "comments": [strings[i] for i in ints(top, 13)],
        "default_sample_type": strings[one(top, 14)],
    }


def make_profile() -> Profile:
    p = Profile(group="checkout", start_time_unix_ns=1_700_000_000_123_456_789, duration_ns=10_000_000_000)
    p.metadata = {"engine": "thread", "dropped": {"aggregator_full": 2}}
    main, handler, sql = Frame("main", "app.py", 1), Frame("handler", "app.py", 20), Frame("execute", "db.py", 7)
    p.add([main, handler, sql], [9, 4], {"lambda_phase": "invoke", "endpoint": "/buy"})
    p.add([main, handler], [3, 3], {"lambda_phase": "invoke"})
    p.add([main], [1, 0])
    return p


def test_written_pprof_decodes_with_an_independent_wire_reader() -> None:
    data = dump_profile(make_profile(), "pprof")
    decoded = decode_profile(gzip.decompress(data))
    assert decoded["strings"][0] == ""
    assert len(decoded["strings"]) == len(set(decoded["strings"]))
    assert decoded["sample_types"] == [("wall", "count"), ("cpu", "count")]
    main, handler, sql = ("main", "app.py", 1), ("handler", "app.py", 20), ("execute", "db.py", 7)
    assert decoded["samples"] == [
        ((main, handler, sql), [9, 4], {"lambda_phase": "invoke", "endpoint": "/buy"}),
        ((main, handler), [3, 3], {"lambda_phase": "invoke"}),
        ((main,), [1, 0], {}),
    ]
    assert decoded["time_nanos"] == 1_700_000_000_123_456_789
    assert decoded["duration_nanos"] == 10_000_000_000
    assert decoded["period_type"] == ("wall", "nanoseconds") and decoded["period"] == 10_000_000
    assert decoded["default_sample_type"] == "cpu"
    assert decoded["comments"][0] == "greenflame.group=checkout"
    assert json.loads(decoded["comments"][1].split("=", 1)[1]) == make_profile().metadata


def test_written_locations_are_leaf_first_and_each_has_a_mapping() -> None:
    top = parse(pprof.dumps(make_profile(), compress=False))
    strings = [v.decode() for n, v in top if n == 6 and isinstance(v, bytes)]
    mapping_ids = {one(m, 1) for m in messages(top, 3)}
    names = {one(f, 1): strings[one(f, 2)] for f in messages(top, 5)}
    by_location = {one(loc, 1): names[one(messages(loc, 4)[0], 1)] for loc in messages(top, 4)}
    assert all(one(loc, 2) in mapping_ids for loc in messages(top, 4))
    first = messages(top, 2)[0]
    assert [by_location[i] for i in ints(first, 1)] == ["execute", "handler", "main"]


# -- the reader, fed hand-encoded profiles ------------------------------------------

STRINGS = ["", "samples", "count", "cpu", "nanoseconds", "main", "app.go", "inlined", "helper", "thread", "worker"]
S = {text: i for i, text in enumerate(STRINGS)}


def foreign_profile(
    samples: Optional[List[bytes]] = None, extra: bytes = b"", strings: Optional[List[str]] = None
) -> bytes:
    """A Go-style profile: two sample types, one inlined call, a location without lines, labels."""
    table = STRINGS if strings is None else strings
    parts = [
        field(1, field(1, S["samples"]) + field(2, S["count"])),
        field(1, field(1, S["cpu"]) + field(2, S["nanoseconds"])),
        field(3, field(1, 1) + field(5, S["app.go"])),
        field(5, field(1, 1) + field(2, S["main"]) + field(4, S["app.go"]) + field(5, 10)),
        field(5, field(1, 2) + field(2, S["helper"]) + field(4, S["app.go"]) + field(5, 30)),
        field(5, field(1, 3) + field(2, S["inlined"]) + field(4, S["app.go"]) + field(5, 50)),
        field(4, field(1, 100) + field(4, field(1, 1) + field(2, 12))),
        # Location 200 holds `inlined` inlined into `helper`: the last Line is the caller.
        field(4, field(1, 200) + field(4, field(1, 3) + field(2, 52)) + field(4, field(1, 2) + field(2, 33))),
        field(4, field(1, 300) + field(2, 1) + field(3, 0x4F00)),
    ]
    if samples is None:
        label = field(3, field(1, S["thread"]) + field(2, S["worker"]))
        numeric = field(3, field(1, S["cpu"]) + field(3, 77))
        samples = [
            packed(1, [200, 100]) + packed(2, [5, 50_000_000]) + label + numeric,
            field(1, 300) + field(1, 100) + field(2, 1) + field(2, 10_000_000),  # unpacked repeated fields
        ]
    parts += [field(2, sample) for sample in samples]
    parts += [field(6, text) for text in table]
    parts += [field(9, 1_000), field(10, 2_000), field(11, field(1, S["cpu"]) + field(2, S["nanoseconds"]))]
    parts += [field(12, 10_000_000), field(13, S["worker"])]
    return b"".join(parts) + extra


def test_reader_handles_inlining_unpacked_fields_numeric_labels_and_raw_addresses() -> None:
    q = read_profile(gzip.compress(foreign_profile()))
    assert q.sample_types == [SampleType("samples", "samples"), SampleType("cpu", "nanoseconds")]
    main, helper, inlined = Frame("main", "app.go", 10), Frame("helper", "app.go", 30), Frame("inlined", "app.go", 50)
    stacks = {(frames, tuple(labels.items())): value for frames, value, labels in q.stacks("cpu")}
    assert stacks == {
        ((main, helper, inlined), (("thread", "worker"),)): 50_000_000,
        ((main, Frame("0x4f00", "app.go", 0)), ()): 10_000_000,
    }
    assert (q.start_time_unix_ns, q.duration_ns, q.sample_period_ns) == (1_000, 2_000, 10_000_000)
    assert q.metadata == {"pprof_comments": ["worker"]}


def test_reader_and_writer_agree_on_a_foreign_profile() -> None:
    q = read_profile(foreign_profile())
    again = read_profile(dump_profile(q, "pprof"))
    assert sorted(again.stacks("cpu"), key=repr) == sorted(q.stacks("cpu"), key=repr)
    assert again.sample_types == q.sample_types


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samples": [packed(1, [999]) + packed(2, [1, 1])]}, "refers to location 999, which does not exist"),
        ({"samples": [packed(1, [100]) + packed(2, [1])]}, "has 1 values but there are 2 sample types"),
        ({"samples": [packed(1, [100]) + packed(2, [1, -5])]}, "negative value"),
        (
            {"samples": [packed(1, [100]) + packed(2, [1, 1]) + field(3, field(1, 999) + field(2, 1))]},
            "string index 999 is out of range",
        ),
        ({"extra": field(4, field(1, 400) + field(4, field(1, 42)))}, None),
        (
            {
                "samples": [packed(1, [400]) + packed(2, [1, 1])],
                "extra": field(4, field(1, 400) + field(4, field(1, 42))),
            },
            "refers to function 42, which does not exist",
        ),
    ],
)
def test_reader_rejects_dangling_references(kwargs: Dict[str, Any], message: Optional[str]) -> None:
    data = foreign_profile(**kwargs)
    if message is None:  # an unused bad location is harmless
        read_profile(data)
        return
    with pytest.raises(ProfileError, match=message):
        read_profile(data)


def test_bad_metadata_comment_is_a_profile_error() -> None:
    strings = [*STRINGS, 'greenflame.metadata={"pid": "x"}']
    data = foreign_profile(strings=strings, extra=field(13, len(strings) - 1))
    with pytest.raises(ProfileError, match=r"greenflame\.metadata\.pid: expected an integer"):
        read_profile(data)


def test_protobuf_without_a_valid_string_table_is_not_taken_for_pprof() -> None:
    no_empty_first = foreign_profile(strings=["x", *STRINGS[1:]])
    with pytest.raises(ProfileError, match="could not recognise"):
        read_profile(no_empty_first)
    with pytest.raises(ProfileError, match="not a pprof profile"):
        pprof.loads(gzip.compress(no_empty_first))
    with pytest.raises(ProfileError, match="not a pprof profile"):
        pprof.loads(foreign_profile() + b"\x32\x10ab")  # a string field cut short
