"""The pprof ``profile.proto`` messages, built in code so that no protoc step is needed.

Field names and numbers follow github.com/google/pprof/proto/profile.proto (package
``perftools.profiles``, proto3, so repeated numbers are packed). The descriptors live in a
private pool, so they never clash with another library that registers the same package.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "perftools.profiles"

_F = descriptor_pb2.FieldDescriptorProto
_INT64, _UINT64, _STRING, _BOOL, _MESSAGE = _F.TYPE_INT64, _F.TYPE_UINT64, _F.TYPE_STRING, _F.TYPE_BOOL, _F.TYPE_MESSAGE

# message -> [(field name, number, type, repeated, message type name)]
FieldSpec = Tuple[str, int, int, bool, str]
MESSAGES: Dict[str, List[FieldSpec]] = {
    "Profile": [
        ("sample_type", 1, _MESSAGE, True, "ValueType"),
        ("sample", 2, _MESSAGE, True, "Sample"),
        ("mapping", 3, _MESSAGE, True, "Mapping"),
        ("location", 4, _MESSAGE, True, "Location"),
        ("function", 5, _MESSAGE, True, "Function"),
        ("string_table", 6, _STRING, True, ""),
        ("drop_frames", 7, _INT64, False, ""),
        ("keep_frames", 8, _INT64, False, ""),
        ("time_nanos", 9, _INT64, False, ""),
        ("duration_nanos", 10, _INT64, False, ""),
        ("period_type", 11, _MESSAGE, False, "ValueType"),
        ("period", 12, _INT64, False, ""),
        ("comment", 13, _INT64, True, ""),
        ("default_sample_type", 14, _INT64, False, ""),
        ("doc_url", 15, _INT64, False, ""),
    ],
    "ValueType": [("type", 1, _INT64, False, ""), ("unit", 2, _INT64, False, "")],
    "Sample": [
        ("location_id", 1, _UINT64, True, ""),
        ("value", 2, _INT64, True, ""),
        ("label", 3, _MESSAGE, True, "Label"),
    ],
    "Label": [
        ("key", 1, _INT64, False, ""),
        ("str", 2, _INT64, False, ""),
        ("num", 3, _INT64, False, ""),
        ("num_unit", 4, _INT64, False, ""),
    ],
    "Mapping": [
        ("id", 1, _UINT64, False, ""),
        ("memory_start", 2, _UINT64, False, ""),
        ("memory_limit", 3, _UINT64, False, ""),
        ("file_offset", 4, _UINT64, False, ""),
        ("filename", 5, _INT64, False, ""),
        ("build_id", 6, _INT64, False, ""),
        ("has_functions", 7, _BOOL, False, ""),
        ("has_filenames", 8, _BOOL, False, ""),
        ("has_line_numbers", 9, _BOOL, False, ""),
        ("has_inline_frames", 10, _BOOL, False, ""),
    ],
    "Location": [
        ("id", 1, _UINT64, False, ""),
        ("mapping_id", 2, _UINT64, False, ""),
        ("address", 3, _UINT64, False, ""),
        ("line", 4, _MESSAGE, True, "Line"),
        ("is_folded", 5, _BOOL, False, ""),
    ],
    "Line": [("function_id", 1, _UINT64, False, ""), ("line", 2, _INT64, False, ""), ("column", 3, _INT64, False, "")],
    "Function": [
        ("id", 1, _UINT64, False, ""),
        ("name", 2, _INT64, False, ""),
        ("system_name", 3, _INT64, False, ""),
        ("filename", 4, _INT64, False, ""),
        ("start_line", 5, _INT64, False, ""),
    ],
}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="greenflame/profile.proto", package=PACKAGE, syntax="proto3")
    for message_name, fields in MESSAGES.items():
        message = proto.message_type.add(name=message_name)
        for name, number, kind, repeated, type_name in fields:
            field = message.field.add(name=name, number=number, type=kind)
            field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
    return proto


def _build() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(_file_descriptor().SerializeToString())
    descriptor = pool.FindMessageTypeByName(f"{PACKAGE}.Profile")
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is not None:
        return get_class(descriptor)
    # protobuf 4.21 has no GetMessageClass; its MessageFactory.GetPrototype does the same.
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)  # pragma: no cover


#: The generated ``perftools.profiles.Profile`` message class.
ProfileMessage: Any = _build()
