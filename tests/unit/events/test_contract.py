"""Rules of the .proto contract itself, read from protoc's descriptors with comments."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf import descriptor_pb2

from driftloop_events.codegen import DEFAULT_PROTO_DIR, descriptor_set, proto_files

pytestmark = pytest.mark.unit

# Field numbers of the paths in SourceCodeInfo.Location (descriptor.proto).
FILE_MESSAGE, FILE_ENUM = 4, 5
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM, MESSAGE_ONEOF = 2, 3, 4, 8
ENUM_VALUE = 2

Element = tuple[str, tuple[int, ...]]


@pytest.fixture(scope="module")
def files() -> list[descriptor_pb2.FileDescriptorProto]:
    return [f for f in descriptor_set().file if f.name.startswith("driftloop/")]


def _enum_elements(
    enum: descriptor_pb2.EnumDescriptorProto, prefix: str, path: tuple[int, ...]
) -> Iterator[Element]:
    yield f"enum {prefix}{enum.name}", path
    for index, value in enumerate(enum.value):
        yield f"enum value {value.name}", (*path, ENUM_VALUE, index)


def _message_elements(
    message: descriptor_pb2.DescriptorProto, prefix: str, path: tuple[int, ...]
) -> Iterator[Element]:
    if message.options.map_entry:
        return  # synthesized by protoc for map<K, V>; the map field carries the comment
    name = f"{prefix}{message.name}"
    yield f"message {name}", path
    for index, field in enumerate(message.field):
        yield f"field {name}.{field.name}", (*path, MESSAGE_FIELD, index)
    for index, oneof in enumerate(message.oneof_decl):
        if not oneof.name.startswith("_"):  # synthetic oneofs of proto3 `optional`
            yield f"oneof {name}.{oneof.name}", (*path, MESSAGE_ONEOF, index)
    for index, nested in enumerate(message.nested_type):
        yield from _message_elements(nested, f"{name}.", (*path, MESSAGE_NESTED, index))
    for index, enum in enumerate(message.enum_type):
        yield from _enum_elements(enum, f"{name}.", (*path, MESSAGE_ENUM, index))


def _elements(file: descriptor_pb2.FileDescriptorProto) -> Iterator[Element]:
    for index, message in enumerate(file.message_type):
        yield from _message_elements(message, "", (FILE_MESSAGE, index))
    for index, enum in enumerate(file.enum_type):
        yield from _enum_elements(enum, "", (FILE_ENUM, index))


def _uncommented(file: descriptor_pb2.FileDescriptorProto) -> list[str]:
    comments = {
        tuple(location.path): (location.leading_comments + location.trailing_comments).strip()
        for location in file.source_code_info.location
    }
    return [f"{file.name}: {label}" for label, path in _elements(file) if not comments.get(path)]


def test_every_message_field_enum_and_value_has_a_comment(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    missing = [item for file in files for item in _uncommented(file)]

    assert missing == []


def test_the_comment_check_notices_an_uncommented_field(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    file = descriptor_pb2.FileDescriptorProto()
    file.CopyFrom(files[0])
    target = (FILE_MESSAGE, 0, MESSAGE_FIELD, 0)
    kept = [loc for loc in file.source_code_info.location if tuple(loc.path) != target]
    del file.source_code_info.location[:]
    file.source_code_info.location.extend(kept)

    assert _uncommented(file) == [
        f"{file.name}: field {file.message_type[0].name}.{file.message_type[0].field[0].name}"
    ]


def test_every_enum_starts_with_an_unspecified_zero_value(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    enums = [
        (file.name, enum)
        for file in files
        for enum in [*file.enum_type, *(e for m in file.message_type for e in m.enum_type)]
    ]

    assert enums
    for name, enum in enums:
        first = enum.value[0]
        assert (first.number, first.name) == (0, f"{_upper_snake(enum.name)}_UNSPECIFIED"), name


def test_every_file_declares_the_package_its_directory_names(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    assert [f.name for f in files] == proto_files(DEFAULT_PROTO_DIR)
    for file in files:
        directory = file.name.rsplit("/", 1)[0]
        assert file.package == directory.replace("/", ".")
        assert file.syntax == "proto3"


def test_time_fields_use_the_timestamp_well_known_type(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    for file in files:
        for message in file.message_type:
            for field in message.field:
                if field.name.endswith("_time"):
                    assert field.type_name == ".google.protobuf.Timestamp", field.name


def _upper_snake(name: str) -> str:
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
