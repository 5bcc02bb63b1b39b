"""Definition idioms that must each be a symbol chunk with the right name and container
(the CI side of `bench/quality/coverage.py`, which measures them against Universal Ctags
on real code), and containers that hold themselves, not their members' bodies."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from semcode.chunking import chunk_file
from semcode.chunking.languages import SCOPE_KINDS
from semcode.chunks import Chunk
from semcode.chunks import SymbolKind as K

SAMPLES = pathlib.Path(__file__).parent / "samples" / "chunking"


def symbols(path: str, text: str) -> set[tuple[str, K, str]]:
    result = chunk_file(path, text)
    assert result.warning is None
    return {(c.name, c.kind, c.container) for c in result.chunks if c.is_symbol}


def test_prototype_methods_are_methods_of_their_constructor() -> None:
    text = (
        "function Reply(res) { this.res = res; }\n\n"
        "Reply.prototype.header = function (key, value) {\n  this.res.set(key, value);\n};\n\n"
        "Reply.prototype.send = async function send(payload) {\n  return payload;\n};\n"
    )
    found = symbols("lib/reply.js", text)
    assert {("header", K.Method, "Reply"), ("send", K.Method, "Reply")} <= found
    assert not any(name == "send" and kind == K.Function for name, kind, _ in found)


def test_exports_assignments_are_functions() -> None:
    text = (
        "module.exports.parse = function (text) {\n  return JSON.parse(text);\n};\n"
        "exports.format = (value) => String(value);\n"
        "app.handle = function handle(req, res) {\n  return res;\n};\n"
    )
    assert symbols("lib/io.js", text) >= {
        ("parse", K.Function, ""), ("format", K.Function, ""), ("handle", K.Function, "app"),
    }


def test_object_literal_methods_and_arrow_properties() -> None:
    text = (
        "module.exports = {\n  start() {\n    return 1;\n  },\n"
        "  stop: () => 2,\n  'restart': function () {\n    return 3;\n  },\n};\n"
        "const api = {\n  fetch(url) {\n    return url;\n  },\n};\n"
        "Queue.prototype = {\n  push: function (x) {\n    return x;\n  },\n};\n"
    )
    assert symbols("lib/obj.js", text) >= {
        ("start", K.Method, ""), ("stop", K.Method, ""), ("restart", K.Method, ""),
        ("fetch", K.Method, "api"), ("push", K.Method, "Queue"),
    }


def test_accessors_are_named_by_their_property() -> None:
    text = (
        "Object.defineProperties(Response.prototype, {\n"
        "  body: {\n    get () {\n      return this._body;\n    },\n"
        "    set: function (value) {\n      this._body = value;\n    },\n  },\n});\n"
        "Object.defineProperty(Request.prototype, 'path', {\n"
        "  get: function () {\n    return this.url;\n  },\n});\n"
    )
    found = symbols("lib/props.js", text)
    assert {("body", K.Property, "Response"), ("path", K.Property, "Request")} <= found
    assert not {name for name, _, _ in found} & {"get", "set"}


def test_named_function_values_are_functions() -> None:
    # A named function value is a definition wherever it is (go-to-symbol knows it).
    text = (
        "app.use(function logRequest(req) {\n  return req;\n});\n"
        "function dispatch(req) {\n"
        "  req.on('error', function handleRequestError(err) {\n    throw err;\n  });\n"
        "  req.onabort = function handleAbort() {\n    req.end();\n  };\n"
        "  return function wrap() {\n    return req;\n  };\n}\n"
    )
    assert symbols("lib/d.js", text) >= {
        ("logRequest", K.Function, ""), ("handleRequestError", K.Function, "dispatch"),
        ("wrap", K.Function, "dispatch"), ("onabort", K.Function, "dispatch.req"),
    }


def test_anonymous_function_values_inside_a_function_body_stay_part_of_it() -> None:
    # A local options bag's functions and `options.x = function () {}` are the enclosing
    # function's code: as chunks of their own they outrank it with its own words.
    text = (
        "function dispatch(req, options) {\n"
        "  options.beforeRedirect = function (o) {\n    return o;\n  };\n"
        "  const visitor = { visit(node) {\n    return node;\n  }, leave: () => 1 };\n"
        "  this.close = function () {\n    req.end();\n  };\n"
        "  const message = (o) => {\n    return `bad ${o}`;\n  };\n"
        "  return visitor;\n}\n"
        "(function () {\n  Foo.prototype.bar = function () {\n    return 1;\n  };\n})();\n"
    )
    found = symbols("lib/d.js", text)
    names = {name for name, _, _ in found}
    assert not names & {"beforeRedirect", "visit", "leave", "message"}
    assert {("dispatch", K.Function, ""), ("close", K.Function, "dispatch"),
            ("bar", K.Method, "Foo")} <= found


def test_prototype_aliases_and_iife_built_functions() -> None:
    text = (
        "function hashClear() {\n  this.size = 0;\n}\n"
        "Hash.prototype.clear = hashClear;\n"
        "var baseCreate = (function () {\n  function object() {}\n"
        "  return function (proto) {\n    return new object();\n  };\n}());\n"
    )
    assert {("clear", K.Method, "Hash"), ("baseCreate", K.Function, "")} <= symbols(
        "lodash/_Hash.js", text)


def test_typescript_overload_signatures_fold_into_the_implementation() -> None:
    text = (
        "export function pick(a: string): string;\n"
        "export function pick(a: number): number;\n"
        "export function pick(a: any): any {\n  return a;\n}\n"
        "class Box {\n  get(key: string): string;\n  get(key: any) {\n    return key;\n  }\n}\n"
    )
    chunks = [c for c in chunk_file("src/pick.ts", text).chunks if c.name in ("pick", "get")]
    assert [(c.name, c.start_line, c.end_line) for c in chunks] == [
        ("pick", 1, 5), ("get", 7, 10)]


def test_typescript_declarations_without_bodies() -> None:
    text = (
        "export declare function firstValueFrom<T>(source: Source<T>): Promise<T>;\n"
        "export interface Operator<T, R> {\n  call(subscriber: Sink<R>, source: any): void;\n}\n"
        "export declare class Store {\n  get(key: string): string;\n}\n"
        "export abstract class Base {\n  abstract run(): void;\n}\n"
    )
    for path in ("src/types.d.ts", "src/types.ts"):
        assert symbols(path, text) >= {
            ("firstValueFrom", K.Function, ""), ("call", K.Method, "Operator"),
            ("get", K.Method, "Store"), ("run", K.Method, "Base"),
        }


def test_java_interface_methods_and_enum_constants() -> None:
    text = (
        "interface Counter {\n  void add(long val);\n  long get();\n}\n"
        "abstract class Stream {\n  public abstract void reset();\n}\n"
        "enum FileSystem {\n  GENERIC(false),\n  LINUX(true) {\n"
        "    boolean isCaseSensitive() { return true; }\n  };\n"
        "  FileSystem(boolean b) {}\n}\n"
    )
    assert symbols("src/A.java", text) >= {
        ("add", K.Method, "Counter"), ("get", K.Method, "Counter"),
        ("reset", K.Method, "Stream"), ("GENERIC", K.EnumMember, "FileSystem"),
        ("LINUX", K.EnumMember, "FileSystem"),
        ("isCaseSensitive", K.Method, "FileSystem.LINUX"),
    }


def test_php_interface_and_abstract_methods() -> None:
    text = (
        "<?php\ninterface FormatterInterface\n{\n    public function format(array $r);\n}\n"
        "abstract class Handler\n{\n    abstract protected function write(array $r): void;\n}\n"
    )
    assert symbols("src/F.php", text) >= {
        ("format", K.Method, "FormatterInterface"), ("write", K.Method, "Handler"),
    }


def test_rust_trait_required_methods() -> None:
    text = "pub trait Merge<T> {\n    fn merge(&mut self, t: T) -> Result<T, T>;\n}\n"
    assert ("merge", K.Method, "Merge") in symbols("src/merge.rs", text)


CONTAINER_SAMPLES = sorted(p.name for p in SAMPLES.iterdir())


def container_pairs(file_name: str) -> Iterator[tuple[Chunk, Chunk]]:
    """(container, symbol chunk) for every container chunk of the sample `file_name` and
    every symbol chunk of that file (the container itself included)."""
    text = (SAMPLES / file_name).read_text(encoding="utf-8")
    chunks = [c for c in chunk_file(file_name, text).chunks if c.is_symbol]
    for container in (c for c in chunks if c.kind in SCOPE_KINDS):
        for member in chunks:
            yield container, member


@pytest.mark.parametrize("file_name", CONTAINER_SAMPLES)
def test_no_container_holds_the_body_of_a_member_with_its_own_chunk(file_name: str) -> None:
    for container, member in container_pairs(file_name):
        inside = container.start_line <= member.start_line <= member.end_line
        inside = inside and member.end_line <= container.end_line and member != container
        body = [line for line in member.text.splitlines() if line.strip()]
        if not inside or len(body) < 3 or member.part:
            continue  # a signature line alone may stand in its container's outline
        assert member.text not in container.text, (container.name, member.name)


_DOC_MARKERS = ("/**", "///", "//", "# ", "--", "/*")


@pytest.mark.parametrize("file_name", CONTAINER_SAMPLES)
def test_a_container_holds_its_members_signatures_not_their_doc_comments(file_name: str) -> None:
    for container, member in container_pairs(file_name):
        if member.container.rsplit(".", 1)[-1] != container.name or member.part:
            continue
        if not container.start_line < member.start_line <= container.end_line:
            continue
        docs = member.text.splitlines()[: max(member.name_line - member.start_line, 0)]
        for line in docs:
            doc = line.strip()
            if doc.startswith(_DOC_MARKERS) and any(ch.isalpha() for ch in doc):
                assert doc not in container.text, (container.name, member.name, doc)


@pytest.mark.parametrize(("path", "member", "field"), [
    ("huge.js", "  /** Step {i}. */\n  step{i}() {{\n{body}\n  }}\n", "  field = 1;"),
    ("Huge.java", "  /** Step {i}. */\n  @Override\n  public void step{i}() {{\n{body}\n  }}\n",
     "  private int field = 1;"),
])
def test_long_container_is_windowed_over_its_outline_only(path: str, member: str,
                                                          field: str) -> None:
    body = "\n".join(f"    x += {j};" for j in range(20))
    count = 100  # more signatures than one chunk holds: windows over the outline
    methods = "\n".join(member.format(i=i, body=body) for i in range(count))
    text = f"/** A huge class. */\nclass Huge {{\n{field}\n{methods}}}\n"
    chunks = chunk_file(path, text).chunks
    outline = [c for c in chunks if c.name == "Huge"]
    assert len(outline) > 1  # more than one chunk holds, even as one-line signatures
    whole = "\n".join(c.text for c in outline)
    assert "x += 3;" not in whole and "Step 3." not in whole  # bodies and member docs
    assert "step99() { ... }" in whole and "A huge class." in outline[0].text
    assert outline[-1].end_line == len(text.splitlines())
    assert len([c for c in chunks if c.name.startswith("step")]) == count
    (step3,) = [c for c in chunks if c.name == "step3"]
    assert "Step 3." in step3.text and "x += 19;" in step3.text  # the member keeps both


def test_module_level_plain_assignments_are_functions_local_ones_are_not() -> None:
    text = (
        "function createApp() {\n  var app = function (req, res) {\n    return res;\n  };\n"
        "  return app;\n}\n"
        "var getTag = baseGetTag;\n"
        "getTag = function (value) {\n  return String(value);\n};\n"
    )
    found = symbols("lib/app.js", text)
    assert ("getTag", K.Function, "") in found
    assert "app" not in {name for name, _, _ in found}  # createApp's own code


def test_object_like_macros_do_not_break_cpp_definitions() -> None:
    # The grammar cannot expand `FMT_CONSTEXPR`/`FMT_BEGIN_NAMESPACE`; blanked (same
    # length) and reparsed, the class and its methods are found, names and lines intact.
    text = (
        "#define LIB_CONSTEXPR constexpr\n"
        "LIB_BEGIN_NAMESPACE\n"
        "class text_style {\n public:\n"
        "  LIB_CONSTEXPR text_style(int em = 0) noexcept : set_(em) {}\n"
        "  LIB_CONSTEXPR bool has_foreground() const noexcept {\n    return set_ != 0;\n  }\n"
        " private:\n  int set_;\n};\n"
        "LIB_END_NAMESPACE\n"
    )
    result = chunk_file("src/color.cpp", text)
    found = {(c.name, c.kind, c.container, c.start_line) for c in result.chunks if c.is_symbol}
    assert {("text_style", K.Class, "", 3), ("has_foreground", K.Method, "text_style", 6),
            ("text_style", K.Constructor, "text_style", 5)} <= found
    assert result.warning is None


def test_a_cpp_header_is_chunked_as_cpp() -> None:
    text = (
        "#pragma once\n"
        "namespace fmt {\n"
        "template <typename T> class buffer {\n public:\n"
        "  void push_back(const T& value) {\n    data_[size_++] = value;\n  }\n"
        " private:\n  T* data_;\n  int size_;\n};\n}\n"
    )
    result = chunk_file("include/fmt/core.h", text)
    assert result.language == "cpp" and result.warning is None
    assert ("push_back", K.Method, "fmt.buffer") in {
        (c.name, c.kind, c.container) for c in result.chunks if c.is_symbol}
    plain = chunk_file("include/list.h", "struct node {\n  int value;\n};\nint count(void);\n")
    assert plain.language == "c"


def test_cpp_specialisations_are_named_after_their_template() -> None:
    # ctags and callers name `template <> struct formatter<bytes>` `formatter`; the
    # arguments stay in the signature line. Methods take the template's name as container.
    text = (
        "template <typename T> struct formatter {};\n"
        "template <typename Char> struct formatter<std::tm,\n"
        "                                          Char> {\n"
        "  void parse() {}\n};\n"
        "template <> struct std::hash<point> {};\n"
        "template <> inline void fputs<wchar_t>(const wchar_t* s) {}\n"
        "void emitter::set_precision<double>(int n) {}\n"
    )
    result = chunk_file("src/format.cpp", text)
    found = {(c.name, c.kind, c.container, c.start_line) for c in result.chunks if c.is_symbol}
    assert {("formatter", K.Struct, "", 1), ("formatter", K.Struct, "", 2),
            ("parse", K.Method, "formatter", 4), ("hash", K.Struct, "std", 6),
            ("fputs", K.Function, "", 7), ("set_precision", K.Method, "emitter", 8)} <= found
    specialised = next(c for c in result.chunks if c.start_line == 2)
    assert (specialised.name_line, specialised.name_start_col, specialised.name_end_col) \
        == (2, 32, 41)  # the name token, not `formatter<std::tm,\n Char>`
    assert result.warning is None


def test_cpp_conversion_operators_are_methods_named_as_written() -> None:
    text = (
        "class source {\n public:\n"
        "  explicit operator bool() const { return ok_; }\n"
        "  operator const std::locale&() const { return loc_; }\n"
        "  operator T*() const\n  {\n    return p_;\n  }\n"
        " private:\n  bool ok_;\n};\n"
        "parser::operator bool() const { return true; }\n"
    )
    found = symbols("src/source.cpp", text)
    assert {("operator bool", K.Method, "source"),
            ("operator const std::locale&", K.Method, "source"),
            ("operator T*", K.Method, "source"), ("operator bool", K.Method, "parser")} <= found


def test_a_typedef_struct_answers_to_its_tag_too() -> None:
    # One chunk named `name_t` (what callers write); `struct tag` (what the kernel style
    # and forward declarations write) is its other name, in BM25's name terms and the
    # definition boost's exact names. An untagged or same-named typedef has none.
    from semcode.chunking.names import other_names
    from semcode.index.tokenizer import chunk_tokens, tokenize

    text = (
        "/* A parser; see yaml_parser_initialize(). */\n"
        "typedef struct yaml_parser_s {\n  int error;\n} yaml_parser_t;\n"
        "typedef enum yaml_break_e\n{\n  YAML_ANY_BREAK\n} yaml_break_t;\n"
        "typedef struct { int x, y; } point_t;\n"
        "typedef struct node node;\n"
        "typedef struct list {\n  struct list *next;\n} list;\n"
        "struct plain {\n  int z;\n};\n"
    )
    result = chunk_file("include/yaml.h", text)
    assert result.language == "c" and result.warning is None
    names = {c.name: other_names(c) for c in result.chunks if c.is_symbol}
    assert names == {"yaml_parser_t": ("yaml_parser_s",), "yaml_break_t": ("yaml_break_e",),
                     "point_t": (), "list": (), "plain": ()}
    parser = next(c for c in result.chunks if c.name == "yaml_parser_t")
    assert chunk_tokens(parser).count(tokenize("yaml_parser_s")[0]) == 3  # twice + text
    assert chunk_tokens(parser, fields=True).count(tokenize("yaml_parser_s")[0]) == 2


def test_other_names_ignore_what_is_not_the_chunks_own_header() -> None:
    # A C++ class holding a typedef'd struct member is not named by the member's tag; a
    # commented-out header is no header; nothing but C-family type chunks is asked.
    from semcode.chunking.names import other_names

    text = (
        "class holder {\n"
        "  typedef struct inner_s {\n    int a;\n  } inner_t;\n"
        "};\n"
        "// typedef struct old_s {\n"
        "typedef struct new_s {\n  int b;\n} new_t;\n"
    )
    chunks = {c.name: c for c in chunk_file("src/holder.cpp", text).chunks if c.is_symbol}
    assert other_names(chunks["holder"]) == ()
    assert other_names(chunks["inner_t"]) == ("inner_s",)
    assert other_names(chunks["new_t"]) == ("new_s",)
    for bad in ("", "typedef struct", "typedef struct {", "\x00typedef struct x {", "}" * 50):
        odd = chunks["new_t"].__class__(**{**_fields(chunks["new_t"]), "text": bad})
        assert other_names(odd) == ()
    python = next(c for c in chunk_file("m.py", "class A:\n    pass\n").chunks)
    assert other_names(python) == ()


def _fields(chunk: object) -> dict[str, object]:
    return {name: getattr(chunk, name) for name in chunk.__slots__}  # type: ignore[attr-defined]
