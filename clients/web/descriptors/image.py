"""Writes the descriptor image of the third-party protos the web client needs.

`make web-gen` runs it before `buf generate --template buf.gen.web.yaml`, which reads the image as
an input. The descriptors come from the Python packages installed in .venv (googleapis-common-protos
for google.rpc, grpcio-health-checking for grpc.health.v1, protobuf for the well-known types they
import), so nothing third-party is copied into the repository by hand. grpcio-health-checking ships
no health.proto, only its compiled descriptor: using the descriptors for every file keeps one way.

Usage: python clients/web/descriptors/image.py OUT.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import FileDescriptor
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2

# The files to generate TypeScript for; their imports are added to the image too (dependencies
# first, as an image requires), and protoc-gen-es skips the well-known types.
ROOTS: tuple[FileDescriptor, ...] = (
    status_pb2.DESCRIPTOR,
    error_details_pb2.DESCRIPTOR,
    health_pb2.DESCRIPTOR,
)


def _ordered(roots: tuple[FileDescriptor, ...]) -> list[FileDescriptor]:
    seen: dict[str, FileDescriptor] = {}

    def visit(file: FileDescriptor) -> None:
        if file.name in seen:
            return
        for dependency in file.dependencies:
            visit(dependency)
        seen[file.name] = file

    for root in roots:
        visit(root)
    return list(seen.values())


def build() -> descriptor_pb2.FileDescriptorSet:
    image = descriptor_pb2.FileDescriptorSet()
    for file in _ordered(ROOTS):
        file.CopyToProto(image.file.add())
    return image


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    text = json_format.MessageToJson(build(), indent=1, sort_keys=True)
    Path(argv[1]).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
