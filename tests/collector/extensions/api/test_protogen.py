"""The committed *_pb2 modules are what ``make proto`` makes from the .proto files beside them."""

from __future__ import annotations

from pathlib import Path

from collector.extensions.api import protogen


def test_generated_modules_match_their_proto_files(tmp_path: Path) -> None:
    protogen.generate(tmp_path)
    for proto in protogen.PROTO_FILES:
        for suffix in ("_pb2.py", "_pb2.pyi"):
            relative = proto.removesuffix(".proto") + suffix
            committed = (protogen.REPO_ROOT / relative).read_text(encoding="utf-8")
            assert (tmp_path / relative).read_text(encoding="utf-8") == committed, f"run make proto: {relative}"
