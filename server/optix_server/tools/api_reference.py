"""Render the Markdown API reference in docs/api/ from the proto comments (run by `make gen`)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2

_FIELD = descriptor_pb2.FieldDescriptorProto

# Source-location path components (descriptor.proto field numbers).
_FILE_PACKAGE = 2
_FILE_MESSAGE = 4
_FILE_ENUM = 5
_FILE_SERVICE = 6
_MESSAGE_FIELD = 2
_MESSAGE_NESTED = 3
_MESSAGE_ENUM = 4
_MESSAGE_ONEOF = 8
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

_SCALARS: dict[int, str] = {
    _FIELD.TYPE_DOUBLE: "double",
    _FIELD.TYPE_FLOAT: "float",
    _FIELD.TYPE_INT64: "int64",
    _FIELD.TYPE_UINT64: "uint64",
    _FIELD.TYPE_INT32: "int32",
    _FIELD.TYPE_FIXED64: "fixed64",
    _FIELD.TYPE_FIXED32: "fixed32",
    _FIELD.TYPE_BOOL: "bool",
    _FIELD.TYPE_STRING: "string",
    _FIELD.TYPE_BYTES: "bytes",
    _FIELD.TYPE_UINT32: "uint32",
    _FIELD.TYPE_SFIXED32: "sfixed32",
    _FIELD.TYPE_SFIXED64: "sfixed64",
    _FIELD.TYPE_SINT32: "sint32",
    _FIELD.TYPE_SINT64: "sint64",
}

_WELL_KNOWN_DOCS = "https://protobuf.dev/reference/protobuf/google.protobuf/#"

INDEX = "README.md"


def compile_descriptor_set(proto_root: Path) -> descriptor_pb2.FileDescriptorSet:
    """Compile every .proto under `proto_root` into one FileDescriptorSet with source comments."""
    protos = sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "api.binpb"
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_root}",
            "--include_source_info",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *protos,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"protoc failed:\n{result.stderr}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def clean_comment(raw: str) -> str:
    """A protoc comment without the space after `//`, trailing blanks or surrounding blank lines."""
    lines = [line[1:] if line.startswith(" ") else line for line in raw.split("\n")]
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def comments_by_path(proto: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """Leading (then trailing) comment of every commented location in a file, keyed by its path."""
    found: dict[tuple[int, ...], str] = {}
    for location in proto.source_code_info.location:
        parts = [clean_comment(c) for c in (location.leading_comments, location.trailing_comments)]
        text = "\n\n".join(part for part in parts if part)
        if text:
            found[tuple(location.path)] = text
    return found


@dataclass
class _Package:
    """The files of one proto package and the lookups rendering needs."""

    name: str
    files: list[descriptor_pb2.FileDescriptorProto] = field(default_factory=list)


@dataclass
class _Context:
    """Where every documented type lives, so a type name can become a link."""

    type_page: dict[str, str]
    map_entries: dict[str, descriptor_pb2.DescriptorProto]


def page_name(package: str) -> str:
    """File name of a package's page, e.g. `optix.user.v1.md`."""
    return f"{package}.md"


def _one_line(text: str) -> str:
    """A comment as one Markdown table cell: paragraphs joined by <br>, pipes escaped."""
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    return "<br><br>".join(p for p in paragraphs if p).replace("|", "\\|")


def _type_ref(type_name: str, ctx: _Context, here: str) -> str:
    """A Markdown reference to a message or enum by its full name (leading dot stripped)."""
    name = type_name.lstrip(".")
    page = ctx.type_page.get(name)
    if page is not None:
        target = f"#{name}" if page == here else f"{page}#{name}"
        return f"[`{name}`]({target})"
    if name.startswith("google.protobuf."):
        anchor = name.removeprefix("google.protobuf.").lower()
        return f"[`{name}`]({_WELL_KNOWN_DOCS}{anchor})"
    return f"`{name}`"


def _field_type(f: _FIELD, ctx: _Context, here: str) -> str:
    """The field's type as Markdown, with `map<K, V>` for map fields."""
    if f.type in (_FIELD.TYPE_MESSAGE, _FIELD.TYPE_ENUM):
        entry = ctx.map_entries.get(f.type_name.lstrip("."))
        if entry is not None:
            key, value = entry.field[0], entry.field[1]
            return f"map<{_field_type(key, ctx, here)}, {_field_type(value, ctx, here)}>"
        return _type_ref(f.type_name, ctx, here)
    return f"`{_SCALARS[f.type]}`"


def _field_label(f: _FIELD, msg: descriptor_pb2.DescriptorProto) -> str:
    """`repeated`, `optional`, `oneof <name>` or empty."""
    if f.label == _FIELD.LABEL_REPEATED:
        return "map" if f.type == _FIELD.TYPE_MESSAGE and _is_map_field(f, msg) else "repeated"
    if f.proto3_optional:
        return "optional"
    if f.HasField("oneof_index"):
        return f"oneof `{msg.oneof_decl[f.oneof_index].name}`"
    return ""


def _is_map_field(f: _FIELD, msg: descriptor_pb2.DescriptorProto) -> bool:
    """Whether `f` is a map field of `msg` (its type is one of msg's map-entry nested types)."""
    short = f.type_name.rsplit(".", 1)[-1]
    return any(n.name == short and n.options.map_entry for n in msg.nested_type)


def _anchor(full_name: str) -> str:
    """An HTML anchor for a fully qualified name."""
    return f'<a id="{full_name}"></a>'


def _comment_block(comments: dict[tuple[int, ...], str], path: tuple[int, ...]) -> list[str]:
    """The comment at `path` as Markdown paragraphs followed by a blank line, or nothing."""
    text = comments.get(path)
    return [text, ""] if text else []


def _render_enum(
    enum: descriptor_pb2.EnumDescriptorProto,
    full_name: str,
    path: tuple[int, ...],
    comments: dict[tuple[int, ...], str],
) -> list[str]:
    """An enum's heading, comment and value table."""
    out = [_anchor(full_name), f"### enum `{full_name}`", ""]
    out += _comment_block(comments, path)
    out += ["| Value | Number | Description |", "| --- | --- | --- |"]
    for i, value in enumerate(enum.value):
        text = _one_line(comments.get((*path, _ENUM_VALUE, i), ""))
        out.append(f"| `{value.name}` | {value.number} | {text} |")
    out.append("")
    return out


def _render_message(
    msg: descriptor_pb2.DescriptorProto,
    full_name: str,
    path: tuple[int, ...],
    comments: dict[tuple[int, ...], str],
    ctx: _Context,
    here: str,
) -> list[str]:
    """A message's heading, comment and field table, then its nested messages and enums."""
    out = [_anchor(full_name), f"### message `{full_name}`", ""]
    out += _comment_block(comments, path)
    if msg.field:
        out += [
            "| Field | Number | Type | Label | Description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for i, f in enumerate(msg.field):
            text = _one_line(comments.get((*path, _MESSAGE_FIELD, i), ""))
            if f.options.deprecated:
                text = f"**Deprecated.** {text}".rstrip()
            kind = _field_type(f, ctx, here)
            label = _field_label(f, msg)
            out.append(f"| `{f.name}` | {f.number} | {kind} | {label} | {text} |")
        out.append("")
    else:
        out += ["No fields.", ""]
    for i, oneof in enumerate(msg.oneof_decl):
        oneof_text = comments.get((*path, _MESSAGE_ONEOF, i))
        if oneof_text:
            out += [f"Oneof `{oneof.name}`: {_one_line(oneof_text)}", ""]
    for i, nested in enumerate(msg.nested_type):
        if not nested.options.map_entry:
            nested_path = (*path, _MESSAGE_NESTED, i)
            nested_name = f"{full_name}.{nested.name}"
            out += _render_message(nested, nested_name, nested_path, comments, ctx, here)
    for i, enum in enumerate(msg.enum_type):
        out += _render_enum(enum, f"{full_name}.{enum.name}", (*path, _MESSAGE_ENUM, i), comments)
    return out


def _render_service(
    service: descriptor_pb2.ServiceDescriptorProto,
    full_name: str,
    path: tuple[int, ...],
    comments: dict[tuple[int, ...], str],
    ctx: _Context,
    here: str,
) -> list[str]:
    """A service's heading, comment and one subsection per RPC."""
    out = [_anchor(full_name), f"### service `{full_name}`", ""]
    out += _comment_block(comments, path)
    for i, method in enumerate(service.method):
        rpc_name = f"{full_name}.{method.name}"
        request = _type_ref(method.input_type, ctx, here)
        response = _type_ref(method.output_type, ctx, here)
        if method.client_streaming:
            request = f"stream {request}"
        if method.server_streaming:
            response = f"stream {response}"
        streaming = {
            (False, False): "unary",
            (False, True): "server streaming",
            (True, False): "client streaming",
            (True, True): "bidirectional streaming",
        }[(method.client_streaming, method.server_streaming)]
        out += [_anchor(rpc_name), f"#### rpc `{method.name}`", ""]
        out += [f"Request: {request} · Response: {response} · {streaming}", ""]
        out += _comment_block(comments, (*path, _SERVICE_METHOD, i))
    return out


def _render_package(package: _Package, ctx: _Context) -> str:
    """The Markdown page of one package."""
    here = page_name(package.name)
    lines = [
        f"# `{package.name}`",
        "",
        "<!-- Generated by `make gen` from the comments in proto/; do not edit. -->",
        "",
        "[All packages](README.md)",
        "",
    ]
    for proto in package.files:
        text = comments_by_path(proto).get((_FILE_PACKAGE,))
        if text:
            lines += [text, ""]
    lines += ["Files: " + ", ".join(f"`{proto.name}`" for proto in package.files), ""]
    sections: dict[str, list[str]] = {"Services": [], "Messages": [], "Enums": []}
    for proto in package.files:
        comments = comments_by_path(proto)
        prefix = proto.package
        for i, service in enumerate(proto.service):
            name = f"{prefix}.{service.name}"
            path = (_FILE_SERVICE, i)
            sections["Services"] += _render_service(service, name, path, comments, ctx, here)
        for i, msg in enumerate(proto.message_type):
            name = f"{prefix}.{msg.name}"
            path = (_FILE_MESSAGE, i)
            sections["Messages"] += _render_message(msg, name, path, comments, ctx, here)
        for i, enum in enumerate(proto.enum_type):
            name = f"{prefix}.{enum.name}"
            sections["Enums"] += _render_enum(enum, name, (_FILE_ENUM, i), comments)
    for title, body in sections.items():
        if body:
            lines += [f"## {title}", "", *body]
    return "\n".join(lines).rstrip("\n") + "\n"


def _render_index(packages: list[_Package]) -> str:
    """The README listing every package with its services, messages and enums."""
    lines = [
        "# OPTIX API reference",
        "",
        "<!-- Generated by `make gen` from the comments in proto/; do not edit. -->",
        "",
        "Generated from the comments in `proto/` by `make gen` "
        "(`python -m optix_server.tools.api_reference`); `make gen-check` fails when it is stale.",
        "",
        "| Package | Services | Messages | Enums |",
        "| --- | --- | --- | --- |",
    ]
    for package in packages:
        page = page_name(package.name)
        services = [f"{p.package}.{s.name}" for p in package.files for s in p.service]
        links = ", ".join(f"[`{s.rsplit('.', 1)[-1]}`]({page}#{s})" for s in services)
        messages = sum(len(p.message_type) for p in package.files)
        enums = sum(len(p.enum_type) for p in package.files)
        lines.append(f"| [`{package.name}`]({page}) | {links} | {messages} | {enums} |")
    return "\n".join(lines) + "\n"


def _index_types(
    ctx: _Context,
    prefix: str,
    page: str,
    messages: Sequence[descriptor_pb2.DescriptorProto],
    enums: Sequence[descriptor_pb2.EnumDescriptorProto],
) -> None:
    """Record the page of every message and enum (nested too) and every map-entry type."""
    for enum in enums:
        ctx.type_page[f"{prefix}.{enum.name}"] = page
    for msg in messages:
        name = f"{prefix}.{msg.name}"
        if msg.options.map_entry:
            ctx.map_entries[name] = msg
            continue
        ctx.type_page[name] = page
        _index_types(ctx, name, page, msg.nested_type, msg.enum_type)


def render(fds: descriptor_pb2.FileDescriptorSet, package_prefix: str = "optix.") -> dict[str, str]:
    """Every page (file name -> Markdown) for the packages starting with `package_prefix`."""
    grouped: dict[str, _Package] = defaultdict(lambda: _Package(name=""))
    for proto in fds.file:
        if proto.package.startswith(package_prefix):
            package = grouped[proto.package]
            package.name = proto.package
            package.files.append(proto)
    packages = [grouped[name] for name in sorted(grouped)]
    ctx = _Context(type_page={}, map_entries={})
    for package in packages:
        package.files.sort(key=lambda proto: proto.name)
        for proto in package.files:
            page = page_name(package.name)
            _index_types(ctx, proto.package, page, proto.message_type, proto.enum_type)
    pages = {page_name(p.name): _render_package(p, ctx) for p in packages}
    pages[INDEX] = _render_index(packages)
    return pages


def write(pages: dict[str, str], out_dir: Path) -> None:
    """Write `pages` into `out_dir`, removing Markdown files there that are no longer generated."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.md"):
        if stale.name not in pages:
            stale.unlink()
    for name, text in sorted(pages.items()):
        target = out_dir / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: compile proto/ and write the reference into --out."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proto", type=Path, default=Path("proto"), help="proto root (-I)")
    parser.add_argument("--out", type=Path, default=Path("docs/api"), help="output directory")
    args = parser.parse_args(argv)
    write(render(compile_descriptor_set(args.proto)), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
