"""Generate the Python modules of the read API's .proto files with grpcio-tools (``make proto``).

The .proto files (Jaeger's remote storage, Tempo's query messages) import
OpenTelemetry's trace.proto, which no installed package ships as source; its
descriptors come from the installed opentelemetry-proto modules instead, so the
generated code imports those same modules. The output (``*_pb2.py`` and
``*_pb2.pyi`` next to each .proto) is committed; tests regenerate it into a
temporary directory and compare, so an edit to a .proto without ``make proto``
fails the suite.

Usage: python -m collector.extensions.api.protogen [OUTPUT_ROOT] (default: the repository root).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from opentelemetry.proto.trace.v1 import trace_pb2

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO_FILES = (
    "collector/extensions/api/jaeger/proto/trace_storage.proto",
    "collector/extensions/api/jaeger/proto/dependency_storage.proto",
    "collector/extensions/api/jaeger/proto/capabilities.proto",
    "collector/extensions/api/tempo/proto/tempo.proto",
)


def _descriptor_set(*roots: FileDescriptor) -> descriptor_pb2.FileDescriptorSet:
    """``roots`` and everything they import, dependencies first."""
    found = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(descriptor: FileDescriptor) -> None:
        if descriptor.name in seen:
            return
        for dependency in descriptor.dependencies:
            add(dependency)
        seen.add(descriptor.name)
        descriptor.CopyToProto(found.file.add())

    for root in roots:
        add(root)
    return found


def generate(output_root: Path) -> None:
    """Write the generated modules of PROTO_FILES under ``output_root`` (their paths relative to it)."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as scratch:
        imported = Path(scratch) / "opentelemetry.pb"
        imported.write_bytes(_descriptor_set(trace_pb2.DESCRIPTOR).SerializeToString())
        status = protoc.main(
            [
                "protoc",
                f"--descriptor_set_in={imported}",
                f"-I{well_known}",
                f"-I{REPO_ROOT}",
                f"--python_out={output_root}",
                f"--pyi_out={output_root}",
                *PROTO_FILES,
            ]
        )
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status}")


def main(argv: list[str]) -> int:
    generate(Path(argv[1]) if len(argv) > 1 else REPO_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
