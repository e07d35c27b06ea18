"""docs/api documents every service, RPC, message, field and enum value with its proto comment."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor, descriptor_pb2

from optix_server.tools import api_reference

_Enum = descriptor_pb2.EnumDescriptorProto
_Message = descriptor_pb2.DescriptorProto

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"
GEN = ROOT / "gen" / "python"
DOCS = ROOT / "docs" / "api"


def _norm(text: str) -> str:
    """Markdown or comment text with table escapes undone and whitespace collapsed."""
    return " ".join(text.replace("<br>", " ").replace("\\|", "|").split())


Names = dict[tuple[int, ...], str]


def _walk_enum(names: Names, e: _Enum, path: tuple[int, ...], name: str) -> None:
    """Record the source path of an enum and its values."""
    names[path] = name
    for i, v in enumerate(e.value):
        names[(*path, 2, i)] = f"{name}.{v.name}"


def _walk_message(names: Names, m: _Message, path: tuple[int, ...], name: str) -> None:
    """Record the source path of a message, its fields, nested messages and enums."""
    names[path] = name
    for i, f in enumerate(m.field):
        names[(*path, 2, i)] = f"{name}.{f.name}"
    for i, n in enumerate(m.nested_type):
        _walk_message(names, n, (*path, 3, i), f"{name}.{n.name}")
    for i, e in enumerate(m.enum_type):
        _walk_enum(names, e, (*path, 4, i), f"{name}.{e.name}")


def _proto_comments(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """Full name (fields and values as `Parent.name`) -> leading comment, read from source info."""
    found: dict[str, str] = {}
    for proto in fds.file:
        if not proto.package.startswith("optix."):
            continue
        names: Names = {}
        for i, m in enumerate(proto.message_type):
            _walk_message(names, m, (4, i), f"{proto.package}.{m.name}")
        for i, e in enumerate(proto.enum_type):
            _walk_enum(names, e, (5, i), f"{proto.package}.{e.name}")
        for i, s in enumerate(proto.service):
            names[(6, i)] = f"{proto.package}.{s.name}"
            for j, method in enumerate(s.method):
                names[(6, i, 2, j)] = f"{proto.package}.{s.name}.{method.name}"
        for location in proto.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is not None and location.leading_comments.strip():
                found[name] = location.leading_comments
    return found


def _generated_files() -> Iterator[descriptor.FileDescriptor]:
    """DESCRIPTOR of every optix.*_pb2 module in gen/python."""
    for path in sorted((GEN / "optix").rglob("*_pb2.py")):
        module = ".".join(path.relative_to(GEN).with_suffix("").parts)
        file: descriptor.FileDescriptor = importlib.import_module(module).DESCRIPTOR
        yield file


class _Pages:
    """The rendered pages, split into sections at each `<a id=...>` anchor."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.sections: dict[str, str] = {}
        for text in pages.values():
            for chunk in text.split('<a id="')[1:]:
                anchor, _, body = chunk.partition('"></a>')
                assert anchor not in self.sections, f"duplicate anchor {anchor}"
                self.sections[anchor] = body

    def section(self, full_name: str) -> str:
        """The section of one service, RPC, message or enum."""
        assert full_name in self.sections, f"{full_name} is missing from docs/api"
        return self.sections[full_name]


@pytest.fixture(scope="module")
def fds() -> descriptor_pb2.FileDescriptorSet:
    """proto/ compiled with source info."""
    return api_reference.compile_descriptor_set(PROTO)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The generator's command line run into a temporary directory."""
    out = tmp_path_factory.mktemp("api")
    assert api_reference.main(["--proto", str(PROTO), "--out", str(out)]) == 0
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(out.glob("*.md"))}


def _check_row(section: str, name: str, number: int, comment: str | None, what: str) -> None:
    """A `| `name` | number | ... |` row exists in `section` and carries `comment`."""
    prefix = f"| `{name}` | {number} |"
    rows = [line for line in section.splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, f"{what}: no row {prefix!r}"
    if comment is not None:
        assert _norm(comment) in _norm(rows[0]), f"{what}: comment missing"


def _check_message(
    pages: _Pages, msg: descriptor.Descriptor, comments: dict[str, str], seen: set[str]
) -> None:
    """A message, its fields, nested messages and enums are documented with their comments."""
    if msg.GetOptions().map_entry:
        return
    section = pages.section(msg.full_name)
    seen.add(msg.full_name)
    if msg.full_name in comments:
        assert _norm(comments[msg.full_name]) in _norm(section), f"{msg.full_name}: comment"
    for f in msg.fields:
        what = f"{msg.full_name}.{f.name}"
        _check_row(section, f.name, f.number, comments.get(what), what)
    for nested in msg.nested_types:
        _check_message(pages, nested, comments, seen)
    for enum in msg.enum_types:
        _check_enum(pages, enum, comments, seen)


def _check_enum(
    pages: _Pages, enum: descriptor.EnumDescriptor, comments: dict[str, str], seen: set[str]
) -> None:
    """An enum and each of its values are documented with their comments."""
    section = pages.section(enum.full_name)
    seen.add(enum.full_name)
    if enum.full_name in comments:
        assert _norm(comments[enum.full_name]) in _norm(section), f"{enum.full_name}: comment"
    for value in enum.values:
        what = f"{enum.full_name}.{value.name}"
        _check_row(section, value.name, value.number, comments.get(what), what)


def test_every_element_of_the_generated_descriptors_is_documented(
    rendered: dict[str, str], fds: descriptor_pb2.FileDescriptorSet
) -> None:
    """Every service, RPC, message, field and enum value in gen/python appears with its comment."""
    pages = _Pages(rendered)
    comments = _proto_comments(fds)
    seen: set[str] = set()
    packages: set[str] = set()
    for file in _generated_files():
        packages.add(file.package)
        assert f"optix/{file.package.split('.')[1]}/" in file.name
        for service in file.services_by_name.values():
            section = pages.section(service.full_name)
            seen.add(service.full_name)
            if service.full_name in comments:
                assert _norm(comments[service.full_name]) in _norm(section)
            for method in service.methods:
                rpc = pages.section(method.full_name)
                seen.add(method.full_name)
                assert f"#{method.input_type.full_name})" in rpc, f"{method.full_name}: request"
                assert f"#{method.output_type.full_name})" in rpc, f"{method.full_name}: response"
                response_marker = f"Response: stream [`{method.output_type.full_name}`]"
                assert (response_marker in rpc) == method.server_streaming, method.full_name
                if method.full_name in comments:
                    assert _norm(comments[method.full_name]) in _norm(rpc), method.full_name
        for msg in file.message_types_by_name.values():
            _check_message(pages, msg, comments, seen)
        for enum in file.enum_types_by_name.values():
            _check_enum(pages, enum, comments, seen)
    assert seen == set(pages.sections), "docs/api documents names gen/python does not have"
    expected_pages = {api_reference.page_name(p) for p in packages} | {api_reference.INDEX}
    assert set(rendered) == expected_pages
    for package in packages:
        assert f"({api_reference.page_name(package)})" in rendered[api_reference.INDEX]
    assert {"optix.user.v1", "optix.watchlist.v1", "optix.common.v1"} <= packages


def test_known_comments_and_streaming_are_rendered(rendered: dict[str, str]) -> None:
    """Spot checks of the layout: an enum value's comment, a streaming RPC, a oneof, a WKT link."""
    watchlist = rendered["optix.watchlist.v1.md"]
    assert (
        "| `WATCHLIST_VIEW_BASIC` | 1 | The watchlist and its ordered symbols, without market data."
        " |" in watchlist
    )
    assert "https://protobuf.dev/reference/protobuf/google.protobuf/#timestamp" in watchlist
    marketdata = rendered["optix.marketdata.v1.md"]
    assert "Response: stream [`optix.marketdata.v1.StreamQuotesResponse`]" in marketdata
    assert "server streaming" in marketdata
    assert "oneof `result`" in rendered["optix.user.v1.md"]
    assert "(optix.common.v1.md#optix.common.v1.Instrument)" in watchlist


def test_rendering_is_deterministic(fds: descriptor_pb2.FileDescriptorSet) -> None:
    """Two renders of the same descriptors are identical (no timestamps, stable order)."""
    shuffled = descriptor_pb2.FileDescriptorSet()
    shuffled.file.extend(reversed(fds.file))
    assert api_reference.render(fds) == api_reference.render(shuffled)


def test_committed_docs_match_a_fresh_render(rendered: dict[str, str]) -> None:
    """docs/api equals what `make gen` writes from proto/ now (else someone skipped `make gen`)."""
    committed = {p.name: p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md"))}
    assert sorted(committed) == sorted(rendered), "docs/api is stale: run `make gen`"
    for name, text in rendered.items():
        assert committed[name] == text, f"docs/api/{name} is stale: run `make gen`"
