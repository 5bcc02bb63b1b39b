"""Per-language knowledge: which files are which language, and what a definition is.

Everything language-specific lives here as data plus small *resolver* functions; the
chunker (chunker.py) is language-agnostic and only walks what this module describes.

How a language is described (`LanguageSpec`):
- `rules` maps a tree-sitter node type to a `Rule`: the default `SymbolKind` and a
  resolver. The chunker finds every node of those types with one compiled query (in C,
  so Python never walks the whole tree) and asks the resolver about each. The resolver
  returns `Found` (where the name is, and optionally a better kind, name text, or a scope
  spelled in the syntax such as Go's receiver or C++'s `Foo::`), or None: "not a
  definition after all" (a Python assignment that is not UPPER_CASE, a C struct that is
  only referenced, a Java interface method without a body).
- `wrappers` are node types that wrap a single definition and belong to its range
  (Python decorators, `export`, C++ `template <...>`).
- `leading` are node types that document the definition that follows them on the next
  line (comments, Rust `#[attributes]`, Elixir `@doc`/`@spec`), as query patterns.

Rules that apply to every language (so they are not repeated per language):
- a definition whose kind is Function directly inside a type (Class, Struct, Interface,
  Enum, or a non-emitted type-like scope such as a Rust `impl`) becomes a Method;
- a Method named in `constructor_names` (or, with `constructors_named_after_type`, named
  like its type) becomes a Constructor;
- every definition is a container for the ones inside it (`container="Outer.Inner"`).

Kind conventions: named modules and namespaces are `Namespace` (never `Module`, which
`Chunk` reserves for the "code between definitions" windows); type aliases are
`TypeParameter` (as rust-analyzer does); traits/protocols/type classes are `Interface`.

The definition rules are written for this project from the grammars' node types; they
are not derived from any upstream tags query.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tree_sitter import Node

from semcode.chunks import SymbolKind as K

# ---------------------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """What a resolver learned about one definition node."""

    name_node: Node | None  # where the name is written (for name_line/cols); None: no name token
    kind: K | None = None  # overrides Rule.kind
    name: str | None = None  # overrides the name node's text
    scope: str = ""  # container spelled in the syntax itself ("Foo" in `func (f *Foo) Bar()`)
    emit: bool = True  # False: only a scope for what it contains (Rust `impl`), no chunk


Resolver = Callable[[Node], Found | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """How one tree-sitter node type becomes a definition: its default symbol kind, and the resolver
    that finds its name (or says the node is not a definition)."""
    kind: K
    resolve: Resolver


@dataclass(frozen=True)
class LanguageSpec:
    """One language for the chunker: the grammar, a `Rule` per definition node type, tree-sitter
    patterns (`@doc`) for what counts as a doc comment above a definition, wrapper node types a
    definition's chunk grows to include (decorators, `export`), and how to tell constructors from
    other methods."""
    name: str  # tree-sitter grammar name
    rules: Mapping[str, Rule]
    leading: tuple[str, ...] = ("(comment) @doc",)
    wrappers: frozenset[str] = frozenset()
    constructor_names: frozenset[str] = frozenset()
    constructors_named_after_type: bool = False
    # Consecutive same-named definitions form one chunk (Haskell equations with their
    # signature, Elixir multi-clause functions).
    merge_clauses: bool = False
    # Bodyless declarations (TypeScript overload signatures) that fold into the chunk of
    # the same-named definition right after them: one chunk per function, not one per
    # signature.
    signature_types: frozenset[str] = frozenset()
    # When a parse has errors, parse again with object-like macro names (`FMT_CONSTEXPR`,
    # `PUGI__FN`, `FMT_BEGIN_NAMESPACE`) blanked out, and keep the tree with fewer errors.
    blank_macros: bool = False


# Kinds whose functions are methods, and whose chunk text is summarised (see chunker.py).
TYPE_KINDS = frozenset({K.Class, K.Struct, K.Interface, K.Enum})
SCOPE_KINDS = TYPE_KINDS | {K.Namespace, K.Module}

# Node types that hold a definition's body when the grammar has no `body` field. Used to
# tell a definition's header (kept in its container's summary) from its body (elided).
BODY_TYPES = frozenset(
    {
        "block", "statement_block", "class_body", "compound_statement", "declaration_list",
        "field_declaration_list", "function_body", "body_statement", "do_block", "Block",
        "template_body", "enum_body", "enum_class_body", "constructor_body", "interface_body",
        "protocol_body", "indented_block", "enum_variant_list", "enumerator_list",
        "class_declarations", "instance_declarations", "where", "ContainerDecl",
    }
)  # fmt: skip

# ---------------------------------------------------------------------------------------
# Resolver building blocks
# ---------------------------------------------------------------------------------------


def by_field(name: str = "name", kind: K | None = None) -> Resolver:
    """The name is the child in field `name`; no such child -> not a definition."""

    def resolve(node: Node) -> Found | None:
        """The child in field `name`, or None (not a definition)."""
        child = node.child_by_field_name(name)
        return Found(child, kind) if child is not None else None

    return resolve


def first_of(*types: str, kind: K | None = None) -> Resolver:
    """The name is the first named child of one of `types` (grammars without fields)."""

    def resolve(node: Node) -> Found | None:
        """The first named child of one of `types`, or None (not a definition)."""
        child = _first_child(node, types)
        return Found(child, kind) if child is not None else None

    return resolve


def with_body(resolver: Resolver, body_field: str = "body") -> Resolver:
    """Only definitions with a body: declarations without one (interface methods,
    prototypes) already appear in their container's chunk."""

    def resolve(node: Node) -> Found | None:
        """The inner resolver's answer for definitions with a body; None otherwise."""
        if node.child_by_field_name(body_field) is None:
            return None
        return resolver(node)

    return resolve


def _first_child(node: Node, types: tuple[str, ...] | frozenset[str]) -> Node | None:
    for child in node.named_children:
        if child.type in types:
            return child
    return None


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _is_upper_name(name: str) -> bool:
    return name.isupper() and name.replace("_", "").isalnum()


def _strip_type(node: Node) -> Node:
    """`*Foo[T]`, `&mut Foo<T>`, `foo::Foo<T>` -> the node naming `Foo`."""
    for _ in range(8):  # bounded: these wrappers nest only a few deep
        if node.type in ("generic_type", "pointer_type", "reference_type", "qualified_type"):
            inner = node.child_by_field_name("type") or (
                node.named_children[-1] if node.named_children else None
            )
            if inner is None:
                break
            node = inner
        elif node.type in ("scoped_type_identifier", "scoped_identifier"):
            inner = node.child_by_field_name("name")
            if inner is None:
                break
            node = inner
        else:
            break
    return node


# ---------------------------------------------------------------------------------------
# Python
# ---------------------------------------------------------------------------------------


def _python_constant(node: Node) -> Found | None:
    # Module-level UPPER_CASE assignments are the constants people search for.
    parent = node.parent
    if parent is not None and parent.type == "expression_statement":
        parent = parent.parent
    if parent is None or parent.type != "module":
        return None
    left = node.child_by_field_name("left")
    if left is None or left.type != "identifier" or not _is_upper_name(_text(left)):
        return None
    return Found(left)


PYTHON = LanguageSpec(
    name="python",
    rules={
        "function_definition": Rule(K.Function, by_field()),
        "class_definition": Rule(K.Class, by_field()),
        "assignment": Rule(K.Constant, _python_constant),
    },
    wrappers=frozenset({"decorated_definition", "expression_statement"}),
    constructor_names=frozenset({"__init__"}),
)

# ---------------------------------------------------------------------------------------
# JavaScript / TypeScript / TSX
# ---------------------------------------------------------------------------------------

_JS_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)


def _js_unwrap(node: Node | None) -> Node | None:
    while node is not None and node.type == "parenthesized_expression":
        node = node.named_children[0] if node.named_children else None
    return node


def _js_iife(value: Node) -> bool:
    """`(function () {...; return function (proto) {...}; }())`: a function built once by
    an immediately invoked one (`var baseCreate = (function () {...}())`)."""
    call = _js_unwrap(value)
    if call is None or call.type != "call_expression":
        return False
    function = _js_unwrap(call.child_by_field_name("function"))
    return function is not None and function.type in _JS_FUNCTION_VALUES


def _js_declarator(node: Node) -> Found | None:
    # `const f = () => ...` is a function (a local one too, like a nested declaration);
    # an UPPER_CASE module-level `const` is a constant; other variables are not definitions.
    declaration = node.parent
    if declaration is None:
        return None
    scope = declaration.parent
    if scope is not None and scope.type == "export_statement":
        scope = scope.parent
    name = node.child_by_field_name("name")
    if name is None or name.type != "identifier":
        return None
    value = node.child_by_field_name("value")
    if value is not None and (value.type in _JS_FUNCTION_VALUES or _js_iife(value)):
        if _js_in_function_body(node) and value.child_by_field_name("name") is None:
            return None  # a local helper: part of its function's code
        return Found(name, K.Function)
    if scope is None or scope.type != "program":
        return None
    if _is_upper_name(_text(name)) and declaration.type == "lexical_declaration":
        return Found(name, K.Constant)
    return None


def _js_field(node: Node) -> Found | None:
    # Class fields holding functions (`onClick = () => {...}`) are methods.
    value = node.child_by_field_name("value")
    if value is None or value.type not in _JS_FUNCTION_VALUES:
        return None
    name = node.child_by_field_name("property") or node.child_by_field_name("name")
    return Found(name, K.Method) if name is not None else None


_JS_NAME = re.compile(r"[\w$]+(\.[\w$]+)*")
_JS_FUNCTIONS = _JS_FUNCTION_VALUES | {
    "function_declaration", "generator_function_declaration", "method_definition"}
# What names a function value, making it a definition rather than a callback.
_JS_NAMING_PARENTS = frozenset({"variable_declarator", "assignment_expression", "pair"})


def _js_in_function_body(node: Node) -> bool:
    """Whether a node sits in the body of a named function (a declaration, a method, a
    named or assigned function value). Function values created there -- callbacks, the
    members of a local object, `options.x = function` -- are part of that function's
    code, not definitions of their own. An anonymous wrapper (an IIFE, `define(...,
    function () {...})`) does not count: its contents are the module's definitions."""
    parent = node.parent
    while parent is not None:
        if parent.type in _JS_FUNCTIONS and (
            parent.child_by_field_name("name") is not None
            or (parent.parent is not None and parent.parent.type in _JS_NAMING_PARENTS)
        ):
            return True
        parent = parent.parent
    return False


def _js_public_target(target: Node | None) -> bool:
    """`Foo.prototype...`, `module.exports...`, `exports...`, `this...`: an assignment that
    defines part of a type's or module's interface wherever it is written."""
    if target is None:
        return False
    text = _text(target)
    return (".prototype" in text or text.startswith(("module.exports", "exports.", "this."))
            or text in ("exports", "this"))
_JS_ACCESSORS = frozenset({"get", "set", "value"})  # the function keys of a descriptor


def _js_scope(target: Node | None) -> str | None:
    """The container an assignment target spells: `Foo.prototype` -> "Foo",
    `module.exports` / `exports` / `this` -> "", `app` -> "app"; None when it is not a
    plain dotted name (`a[i]`, `f()`)."""
    if target is None:
        return None
    text = _text(target)
    if _JS_NAME.fullmatch(text) is None:
        return None
    parts = text.split(".")
    if parts[-1] == "prototype":
        parts.pop()
    if parts[:2] == ["module", "exports"]:
        parts = parts[2:]
    elif parts[:1] in (["exports"], ["this"]):
        parts = parts[1:]
    return ".".join(parts)


def _js_assignment(node: Node) -> Found | None:
    # `Foo.prototype.bar = function` -> Foo.bar (a method); `exports.x = () => ...` -> x;
    # `app.handle = function handle()` -> app.handle.
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if left is None or right is None:
        return None
    if right.type == "identifier" and left.type == "member_expression":
        return _js_prototype_alias(left)
    if right.type not in _JS_FUNCTION_VALUES:
        return None
    if left.type == "identifier":  # `getTag = function (value) {...}`
        if _js_in_function_body(node) and right.child_by_field_name("name") is None:
            return None  # `predicate = function (key) {...}` inside a function: its code
        return Found(left, K.Function)
    if left.type != "member_expression":
        return None
    prop = left.child_by_field_name("property")
    obj = left.child_by_field_name("object")
    if (_js_in_function_body(node) and not _js_public_target(obj)
            and right.child_by_field_name("name") is None):
        return None  # `options.onDone = function () {...}` inside a function: its code
    scope = _js_scope(obj)
    if prop is None or prop.type != "property_identifier" or scope is None:
        return None
    on_prototype = obj is not None and _text(obj).endswith(".prototype")
    return Found(prop, K.Method if on_prototype else K.Function, scope=scope)


def _js_prototype_alias(left: Node) -> Found | None:
    """`Hash.prototype.clear = hashClear`: the method `Hash.clear`, its body defined
    under another name."""
    prop, obj = left.child_by_field_name("property"), left.child_by_field_name("object")
    if prop is None or prop.type != "property_identifier" or obj is None:
        return None
    if not _text(obj).endswith(".prototype"):
        return None
    scope = _js_scope(obj)
    return Found(prop, K.Method, scope=scope) if scope else None


def _js_object_scope(obj: Node) -> str:
    """The container of an object literal's methods: the variable it initialises
    (`const api = {...}` -> "api") or the target it is assigned to (`Foo.prototype =
    {...}` -> "Foo", `module.exports = {...}` -> "")."""
    parent = obj.parent
    if parent is None:
        return ""
    if parent.type == "variable_declarator":
        name = parent.child_by_field_name("name")
        return _text(name) if name is not None and name.type == "identifier" else ""
    if parent.type == "assignment_expression":
        left = parent.child_by_field_name("left")
        if left is not None and left.type == "member_expression":
            return _js_scope(left) or ""
        return _text(left) if left is not None and left.type == "identifier" else ""
    return ""


def _js_accessor(key: Node, obj: Node) -> Found | None:
    """`get` / `set` / `value` of a property descriptor, named by the property:
    `Object.defineProperties(X.prototype, { body: { get () {...} } })` -> X.body,
    `Object.defineProperty(X.prototype, 'body', { get: ... })` -> X.body."""
    if _text(key) not in _JS_ACCESSORS or obj.type != "object" or obj.parent is None:
        return None
    holder = obj.parent
    if holder.type == "pair" and holder.parent is not None:  # defineProperties(X, {p: {get}})
        name = holder.child_by_field_name("key")
        args = holder.parent.parent
        if name is None or args is None or args.type != "arguments":
            return None
        call, target = args.parent, args.named_children[0] if args.named_children else None
        if call is None or not _text(call.child_by_field_name("function") or call).endswith(
                "defineProperties"):
            return None
        spelled = _first_child(name, ("string_fragment",)) or name
        return Found(spelled, K.Property, scope=_js_scope(target) or "")
    if holder.type == "arguments" and len(holder.named_children) >= 3:  # defineProperty
        call = holder.parent
        target, name = holder.named_children[0], holder.named_children[1]
        if call is None or not _text(call.child_by_field_name("function") or call).endswith(
                "defineProperty") or name.type != "string":
            return None
        spelled = _first_child(name, ("string_fragment",)) or name
        return Found(spelled, K.Property, scope=_js_scope(target) or "")
    return None


def _js_method(node: Node) -> Found | None:
    # Class methods, and the methods of object literals (`module.exports = { a() {} }`),
    # which take the object's name as their container.
    name = node.child_by_field_name("name")
    if name is None:
        return None
    obj = node.parent
    if obj is None or obj.type != "object":
        return Found(name)
    if _js_local_object(obj):
        return None
    return _js_accessor(name, obj) or Found(name, scope=_js_object_scope(obj))


def _js_local_object(obj: Node) -> bool:
    """An object literal built inside a function body (an options bag, a visitor passed
    on) unless it is assigned to a prototype or export: its functions are that
    function's code."""
    if not _js_in_function_body(obj):
        return False
    parent = obj.parent
    return not (parent is not None and parent.type == "assignment_expression"
                and _js_public_target(parent.child_by_field_name("left")))


def _js_pair(node: Node) -> Found | None:
    # `{ run: function () {...}, stop: () => ... }`: function-valued properties.
    key, value = node.child_by_field_name("key"), node.child_by_field_name("value")
    if key is None or value is None or value.type not in _JS_FUNCTION_VALUES:
        return None
    obj = node.parent
    if obj is None or _js_local_object(obj):
        return None
    accessor = _js_accessor(key, obj)
    if accessor is not None:
        return accessor
    if key.type == "string":
        key = _first_child(key, ("string_fragment",)) or key
    elif key.type != "property_identifier":
        return None
    return Found(key, K.Method, scope=_js_object_scope(obj))


def _js_named_function_value(node: Node) -> Found | None:
    # `on('error', function handleError() {...})`, `return function wrap() {...}`: a
    # named function expression that no assignment, declarator or property names.
    name = node.child_by_field_name("name")
    parent = node.parent
    if name is None or parent is None:
        return None
    if parent.type in ("assignment_expression", "variable_declarator", "pair",
                       "field_definition", "public_field_definition"):
        return None
    return Found(name, K.Function)


_JS_RULES: dict[str, Rule] = {
    "function_declaration": Rule(K.Function, by_field()),
    "generator_function_declaration": Rule(K.Function, by_field()),
    "class_declaration": Rule(K.Class, by_field()),
    "method_definition": Rule(K.Method, _js_method),
    "variable_declarator": Rule(K.Function, _js_declarator),
    "field_definition": Rule(K.Method, _js_field),
    "assignment_expression": Rule(K.Function, _js_assignment),
    "pair": Rule(K.Method, _js_pair),
    "function_expression": Rule(K.Function, _js_named_function_value),
}
_JS_WRAPPERS = frozenset({"export_statement", "lexical_declaration", "variable_declaration"})

JAVASCRIPT = LanguageSpec(
    name="javascript",
    rules=_JS_RULES,
    wrappers=_JS_WRAPPERS,
    constructor_names=frozenset({"constructor"}),
)

_TS_RULES: dict[str, Rule] = {
    **{k: v for k, v in _JS_RULES.items() if k != "field_definition"},
    "public_field_definition": Rule(K.Method, _js_field),
    "abstract_class_declaration": Rule(K.Class, by_field()),
    "interface_declaration": Rule(K.Interface, by_field()),
    "enum_declaration": Rule(K.Enum, by_field()),
    "type_alias_declaration": Rule(K.TypeParameter, by_field()),
    "internal_module": Rule(K.Namespace, with_body(by_field())),
    "module": Rule(K.Namespace, with_body(by_field())),
    # Declarations without bodies (`.d.ts` files, overloads, interface members) are
    # definitions too: often the only place a name is declared with its types.
    "function_signature": Rule(K.Function, by_field()),
    "method_signature": Rule(K.Method, by_field()),
    "abstract_method_signature": Rule(K.Method, by_field()),
}
_TS_SIGNATURES = frozenset({"function_signature", "method_signature"})
TYPESCRIPT = LanguageSpec(
    name="typescript",
    rules=_TS_RULES,
    wrappers=_JS_WRAPPERS | {"expression_statement", "ambient_declaration"},
    constructor_names=frozenset({"constructor"}),
    signature_types=_TS_SIGNATURES,
)
TSX = LanguageSpec(
    name="tsx",
    rules=_TS_RULES,
    wrappers=TYPESCRIPT.wrappers,
    constructor_names=TYPESCRIPT.constructor_names,
    signature_types=_TS_SIGNATURES,
)

# ---------------------------------------------------------------------------------------
# Go
# ---------------------------------------------------------------------------------------


def _go_method(node: Node) -> Found | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    receiver = node.child_by_field_name("receiver")
    param = _first_child(receiver, ("parameter_declaration",)) if receiver else None
    rtype = param.child_by_field_name("type") if param else None
    scope = _text(_strip_type(rtype)) if rtype is not None else ""
    return Found(name, K.Method, scope=scope)


def _go_type(node: Node) -> Found | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    body = node.child_by_field_name("type")
    body_type = body.type if body is not None else ""
    kind = {"struct_type": K.Struct, "interface_type": K.Interface}.get(body_type, K.Class)
    return Found(name, kind)


def _go_value_block(spec_type: str, top_level_only: bool) -> Resolver:
    # A `const (...)` block is one chunk, named after its first constant: iota
    # enumerations read as a unit, and one chunk per line would be noise.
    def resolve(node: Node) -> Found | None:
        """The block named after its first spec's name (top-level blocks only when asked); None when
        it has none."""
        if top_level_only and (node.parent is None or node.parent.type != "source_file"):
            return None
        spec = _first_child(node, (spec_type,))
        if spec is None:
            spec_list = _first_child(node, (spec_type + "_list",))
            spec = _first_child(spec_list, (spec_type,)) if spec_list else None
        name = spec.child_by_field_name("name") if spec else None
        return Found(name) if name is not None else None

    return resolve


GO = LanguageSpec(
    name="go",
    rules={
        "function_declaration": Rule(K.Function, by_field()),
        "method_declaration": Rule(K.Method, _go_method),
        "type_spec": Rule(K.Class, _go_type),
        "type_alias": Rule(K.TypeParameter, by_field()),
        "const_declaration": Rule(K.Constant, _go_value_block("const_spec", True)),
        "var_declaration": Rule(K.Variable, _go_value_block("var_spec", True)),
    },
    wrappers=frozenset({"type_declaration"}),
)

# ---------------------------------------------------------------------------------------
# Rust
# ---------------------------------------------------------------------------------------


def _rust_impl(node: Node) -> Found | None:
    # `impl Trait for Foo<T> { fn bar }` -> bar's container is "Foo"; the impl itself is
    # not a symbol (its methods are), so it yields no chunk of its own.
    rtype = node.child_by_field_name("type")
    if rtype is None:
        return None
    return Found(_strip_type(rtype), emit=False)


RUST = LanguageSpec(
    name="rust",
    rules={
        "function_item": Rule(K.Function, by_field()),
        "function_signature_item": Rule(K.Function, by_field()),  # a trait's required fn
        "struct_item": Rule(K.Struct, by_field()),
        "union_item": Rule(K.Struct, by_field()),
        "enum_item": Rule(K.Enum, by_field()),
        "trait_item": Rule(K.Interface, by_field()),
        "impl_item": Rule(K.Class, _rust_impl),
        "mod_item": Rule(K.Namespace, with_body(by_field())),
        "const_item": Rule(K.Constant, by_field()),
        "static_item": Rule(K.Constant, by_field()),
        "type_item": Rule(K.TypeParameter, by_field()),
        "macro_definition": Rule(K.Function, by_field()),
    },
    leading=("(line_comment) @doc", "(block_comment) @doc", "(attribute_item) @doc"),
)

# ---------------------------------------------------------------------------------------
# Java, C#, Kotlin, Scala, Swift (class-based languages)
# ---------------------------------------------------------------------------------------

JAVA = LanguageSpec(
    name="java",
    rules={
        "class_declaration": Rule(K.Class, by_field()),
        "record_declaration": Rule(K.Class, by_field()),
        "interface_declaration": Rule(K.Interface, by_field()),
        "annotation_type_declaration": Rule(K.Interface, by_field()),
        "enum_declaration": Rule(K.Enum, by_field()),
        # Interface and abstract methods too: the contract is what callers look for.
        "method_declaration": Rule(K.Method, by_field()),
        "enum_constant": Rule(K.EnumMember, by_field()),
        "constructor_declaration": Rule(K.Constructor, by_field()),
        "compact_constructor_declaration": Rule(K.Constructor, by_field()),
    },
    leading=("(line_comment) @doc", "(block_comment) @doc"),
)

CSHARP = LanguageSpec(
    name="csharp",
    rules={
        "class_declaration": Rule(K.Class, by_field()),
        "record_declaration": Rule(K.Class, by_field()),
        "struct_declaration": Rule(K.Struct, by_field()),
        "interface_declaration": Rule(K.Interface, by_field()),
        "enum_declaration": Rule(K.Enum, by_field()),
        "namespace_declaration": Rule(K.Namespace, by_field()),
        "method_declaration": Rule(K.Method, with_body(by_field())),
        "constructor_declaration": Rule(K.Constructor, by_field()),
        "local_function_statement": Rule(K.Function, by_field()),
    },
)


def _kotlin_class(node: Node) -> Found | None:
    name = _first_child(node, ("type_identifier",))
    if name is None:
        return None
    if any(child.type == "interface" for child in node.children):
        return Found(name, K.Interface)
    if _first_child(node, ("enum_class_body",)) is not None:
        return Found(name, K.Enum)
    return Found(name, K.Class)


def _kotlin_function(node: Node) -> Found | None:
    if _first_child(node, ("function_body",)) is None:
        return None  # abstract / interface member: part of its container's chunk
    name = _first_child(node, ("simple_identifier",))
    return Found(name) if name is not None else None


def _kotlin_companion(node: Node) -> Found | None:
    name = _first_child(node, ("type_identifier",))
    return Found(name) if name is not None else Found(None, name="Companion")


def _kotlin_constructor(node: Node) -> Found | None:
    keyword = next((c for c in node.children if c.type == "constructor"), None)
    return Found(keyword, name="constructor")


def _kotlin_const(node: Node) -> Found | None:
    # Only top-level `const val`: other properties stay in their container's chunk.
    if node.parent is None or node.parent.type != "source_file":
        return None
    modifiers = _first_child(node, ("modifiers",))
    if modifiers is None or "const" not in _text(modifiers).split():
        return None
    declaration = _first_child(node, ("variable_declaration",))
    name = _first_child(declaration, ("simple_identifier",)) if declaration else None
    return Found(name) if name is not None else None


KOTLIN = LanguageSpec(
    name="kotlin",
    rules={
        "class_declaration": Rule(K.Class, _kotlin_class),
        "object_declaration": Rule(K.Class, first_of("type_identifier")),
        "companion_object": Rule(K.Class, _kotlin_companion),
        "function_declaration": Rule(K.Function, _kotlin_function),
        "secondary_constructor": Rule(K.Constructor, _kotlin_constructor),
        "property_declaration": Rule(K.Constant, _kotlin_const),
        "type_alias": Rule(K.TypeParameter, first_of("type_identifier")),
    },
    leading=("(line_comment) @doc", "(multiline_comment) @doc"),
)

SCALA = LanguageSpec(
    name="scala",
    rules={
        "class_definition": Rule(K.Class, by_field()),
        "object_definition": Rule(K.Class, by_field()),
        "trait_definition": Rule(K.Interface, by_field()),
        "enum_definition": Rule(K.Enum, by_field()),
        "function_definition": Rule(K.Function, by_field()),
        "type_definition": Rule(K.TypeParameter, by_field()),
    },
    leading=("(comment) @doc", "(block_comment) @doc"),
)

_SWIFT_CLASS_KINDS = {"class": K.Class, "actor": K.Class, "struct": K.Struct, "enum": K.Enum}


def _swift_class(node: Node) -> Found | None:
    # One node type for class/struct/enum/actor/extension; the keyword tells which.
    name = node.child_by_field_name("name")
    if name is None:
        return None
    for child in node.children:
        if child.type == "extension":
            # Like a Rust impl: a scope for its members, not a symbol of its own.
            return Found(_first_child(name, ("type_identifier",)) or name, emit=False)
        if child.type in _SWIFT_CLASS_KINDS:
            return Found(name, _SWIFT_CLASS_KINDS[child.type])
    return Found(name)


def _swift_keyword(keyword: str) -> Resolver:
    def resolve(node: Node) -> Found | None:
        """The keyword token itself, named after the keyword (`init` and `deinit` have no name of
        their own)."""
        token = next((c for c in node.children if c.type == keyword), None)
        return Found(token, name=keyword)

    return resolve


SWIFT = LanguageSpec(
    name="swift",
    rules={
        "class_declaration": Rule(K.Class, _swift_class),
        "protocol_declaration": Rule(K.Interface, by_field()),
        "function_declaration": Rule(K.Function, with_body(by_field())),
        "init_declaration": Rule(K.Constructor, _swift_keyword("init")),
        "deinit_declaration": Rule(K.Method, _swift_keyword("deinit")),
        "typealias_declaration": Rule(K.TypeParameter, by_field()),
    },
    leading=("(comment) @doc", "(multiline_comment) @doc"),
)

# ---------------------------------------------------------------------------------------
# C and C++
# ---------------------------------------------------------------------------------------


def _c_function(node: Node) -> Found | None:
    # The name hides in a declarator chain: `*(*f)(int)` ... -> function_declarator. A
    # conversion operator has no function_declarator: `operator bool() const` is an
    # operator_cast, `Parser::operator bool() const` a qualified_identifier around one.
    declarator = node.child_by_field_name("declarator")
    for _ in range(16):  # bounded against pathological nesting
        if declarator is None or declarator.type in _C_FUNCTION_DECLARATORS:
            break
        declarator = declarator.child_by_field_name("declarator") or (
            declarator.named_children[-1] if declarator.named_children else None
        )
    if declarator is None:
        return None
    name = (declarator.child_by_field_name("declarator")
            if declarator.type == "function_declarator" else declarator)
    if name is None:
        return None
    # `double Polygon::area() const {...}`: a method defined outside its class.
    name, scope_parts = _unqualified(name)
    if name is None:
        return None
    found = _c_function_name(name)
    if scope_parts:
        return Found(found.name_node, K.Method, found.name, scope=".".join(scope_parts))
    return found


def _unqualified(name: Node | None) -> tuple[Node | None, list[str]]:
    """A C++ name without its qualifiers (`a::b<T>::c` is `c`) and the scopes it named,
    outermost first, each without template arguments (`a`, `b`)."""
    scope_parts: list[str] = []
    while name is not None and name.type == "qualified_identifier":
        scope = name.child_by_field_name("scope")
        if scope is not None:
            scope_parts.append(_text(scope).split("<", 1)[0])
        name = name.child_by_field_name("name")
    return name, scope_parts


_C_FUNCTION_DECLARATORS = frozenset(
    {"function_declarator", "operator_cast", "qualified_identifier"})
_SPACES = re.compile(r"\s+")


def _c_function_name(name: Node) -> Found:
    """A function's name node to its name: `fputs<wchar_t>` (a specialisation) is
    `fputs`, as its callers and the primary template write it; a conversion operator is
    `operator T` as written up to its parameters (`operator const Char*`)."""
    if name.type == "template_function":
        return Found(name.child_by_field_name("name") or name)
    if name.type == "operator_cast":
        raw = name.text or b""
        params = _c_parameters(name)
        cut = raw[: params.start_byte - name.start_byte] if params is not None else raw
        text = cut.decode("utf-8", "replace")
        if params is None:
            text = text.split("(", 1)[0]
        return Found(name, name=_SPACES.sub(" ", text).strip())
    return Found(name)


def _c_parameters(node: Node) -> Node | None:
    """The parameter list of a conversion operator (under its abstract declarators)."""
    declarator = node.child_by_field_name("declarator")
    for _ in range(8):  # `&`, `*`, `const` wrappers nest only a few deep
        if declarator is None:
            return None
        params = declarator.child_by_field_name("parameters")
        if params is not None:
            return params
        declarator = declarator.child_by_field_name("declarator") or (
            declarator.named_children[0] if declarator.named_children else None
        )
    return None


def _c_type_name(node: Node) -> Found | None:
    """The name of a struct/class/union/enum specifier: `formatter<std::tm, Char>` (a
    specialisation) is `formatter`; `std::hash<Foo>` is `hash` in scope `std`."""
    name, scope_parts = _unqualified(node.child_by_field_name("name"))
    if name is not None and name.type == "template_type":
        name = name.child_by_field_name("name") or name
    if name is None:
        return None
    return Found(name, scope=".".join(scope_parts))


def _c_tagged(node: Node) -> Found | None:
    # `struct foo {...}` defines; `struct foo *p` only refers. A typedef'd struct is
    # handled (and named) by its type_definition.
    if node.child_by_field_name("body") is None:
        return None
    if node.parent is not None and node.parent.type == "type_definition":
        return None
    return _c_type_name(node)


_C_TAG_KINDS = {
    "struct_specifier": K.Struct,
    "union_specifier": K.Struct,
    "enum_specifier": K.Enum,
    "class_specifier": K.Class,
}


def _c_typedef(node: Node) -> Found | None:
    # `typedef struct {...} point_t;` is the struct point_t; plain typedefs are not
    # definitions worth a chunk.
    tagged = node.child_by_field_name("type")
    if tagged is None or tagged.type not in _C_TAG_KINDS:
        return None
    if tagged.child_by_field_name("body") is None:
        return None
    name = node.child_by_field_name("declarator")
    return Found(name, _C_TAG_KINDS[tagged.type]) if name is not None else None


_C_RULES: dict[str, Rule] = {
    "function_definition": Rule(K.Function, _c_function),
    "struct_specifier": Rule(K.Struct, _c_tagged),
    "union_specifier": Rule(K.Struct, _c_tagged),
    "enum_specifier": Rule(K.Enum, _c_tagged),
    "type_definition": Rule(K.Struct, _c_typedef),
}

C = LanguageSpec(name="c", rules=_C_RULES, blank_macros=True)

CPP = LanguageSpec(
    name="cpp",
    rules={
        **_C_RULES,
        "class_specifier": Rule(K.Class, _c_tagged),
        "namespace_definition": Rule(K.Namespace, with_body(by_field())),
        "alias_declaration": Rule(K.TypeParameter, by_field()),
    },
    wrappers=frozenset({"template_declaration"}),
    constructors_named_after_type=True,
    blank_macros=True,
)

# ---------------------------------------------------------------------------------------
# Ruby, PHP
# ---------------------------------------------------------------------------------------


def _ruby_named(node: Node) -> Found | None:
    # `class Foo::Bar` is Bar in scope Foo.
    name = node.child_by_field_name("name")
    if name is None:
        return None
    if name.type == "scope_resolution":
        inner = name.child_by_field_name("name")
        scope = name.child_by_field_name("scope")
        if inner is not None:
            return Found(inner, scope=_text(scope).replace("::", ".") if scope else "")
    return Found(name)


def _ruby_constant(node: Node) -> Found | None:
    left = node.child_by_field_name("left")
    if left is None or left.type != "constant":
        return None
    parent = node.parent
    if parent is None:
        return None
    if parent.type == "program" or (
        parent.type == "body_statement"
        and parent.parent is not None
        and parent.parent.type in ("class", "module")
    ):
        return Found(left)
    return None


RUBY = LanguageSpec(
    name="ruby",
    rules={
        "class": Rule(K.Class, _ruby_named),
        "module": Rule(K.Namespace, _ruby_named),
        "method": Rule(K.Function, by_field()),
        "singleton_method": Rule(K.Function, by_field()),
        "assignment": Rule(K.Constant, _ruby_constant),
    },
    constructor_names=frozenset({"initialize"}),
)


def _php_const(node: Node) -> Found | None:
    if node.parent is None or node.parent.type != "program":
        return None
    element = _first_child(node, ("const_element",))
    name = _first_child(element, ("name",)) if element else None
    return Found(name) if name is not None else None


PHP = LanguageSpec(
    name="php",
    rules={
        "class_declaration": Rule(K.Class, by_field()),
        "interface_declaration": Rule(K.Interface, by_field()),
        "trait_declaration": Rule(K.Class, by_field()),
        "enum_declaration": Rule(K.Enum, by_field()),
        "namespace_definition": Rule(K.Namespace, with_body(by_field())),
        "method_declaration": Rule(K.Method, by_field()),  # interface/abstract ones too
        "function_definition": Rule(K.Function, by_field()),
        "const_declaration": Rule(K.Constant, _php_const),
    },
    constructor_names=frozenset({"__construct"}),
)

# ---------------------------------------------------------------------------------------
# Lua, Bash
# ---------------------------------------------------------------------------------------


def _lua_function_name(name: Node) -> Found:
    # `function M.new()` is new in scope M; `function M:push()` is a method of M.
    if name.type == "method_index_expression":
        method, table = name.child_by_field_name("method"), name.child_by_field_name("table")
        if method is not None:
            return Found(method, K.Method, scope=_text(table) if table else "")
    if name.type == "dot_index_expression":
        fld, table = name.child_by_field_name("field"), name.child_by_field_name("table")
        if fld is not None:
            return Found(fld, scope=_text(table) if table else "")
    return Found(name)


def _lua_function(node: Node) -> Found | None:
    name = node.child_by_field_name("name")
    return _lua_function_name(name) if name is not None else None


def _lua_assigned_function(node: Node) -> Found | None:
    # `local f = function(...) end` / `M.f = function(...) end`.
    variables = _first_child(node, ("variable_list",))
    values = _first_child(node, ("expression_list",))
    if variables is None or values is None or variables.named_child_count != 1:
        return None
    value = values.named_children[0] if values.named_children else None
    target = variables.named_children[0]
    if value is None or value.type != "function_definition":
        return None
    return _lua_function_name(target)


LUA = LanguageSpec(
    name="lua",
    rules={
        "function_declaration": Rule(K.Function, _lua_function),
        "assignment_statement": Rule(K.Function, _lua_assigned_function),
    },
    wrappers=frozenset({"variable_declaration"}),
)

BASH = LanguageSpec(name="bash", rules={"function_definition": Rule(K.Function, by_field())})

# ---------------------------------------------------------------------------------------
# Elixir
# ---------------------------------------------------------------------------------------

_ELIXIR_FUNCTIONS = frozenset(
    {"def", "defp", "defmacro", "defmacrop", "defguard", "defguardp", "defdelegate", "defn"}
)
_ELIXIR_SCOPES = {
    "defmodule": K.Namespace,
    "defprotocol": K.Interface,
    "defimpl": K.Namespace,
}


def _elixir_call(node: Node) -> Found | None:
    # Elixir definitions are ordinary macro calls: `def name(args) do ... end`.
    target = node.child_by_field_name("target")
    if target is None or target.type != "identifier":
        return None
    keyword = _text(target)
    args = _first_child(node, ("arguments",))
    if args is None or not args.named_children:
        return None
    head = args.named_children[0]
    if keyword in _ELIXIR_SCOPES:
        return Found(head, _ELIXIR_SCOPES[keyword]) if head.type == "alias" else None
    if keyword == "test" and head.type == "string":
        content = _first_child(head, ("quoted_content",))
        return Found(head, K.Function, name=_text(content) if content else _text(head))
    if keyword not in _ELIXIR_FUNCTIONS:
        return None
    has_body = (
        _first_child(node, ("do_block",)) is not None
        or _first_child(args, ("keywords",)) is not None
        or keyword == "defdelegate"
    )
    if not has_body:
        return None  # a bodiless head or protocol signature: part of its container
    if head.type == "binary_operator":  # `def f(x) when guard`
        head = head.child_by_field_name("left") or head
    if head.type == "call":
        head = head.child_by_field_name("target") or head
    if head.type != "identifier":
        return None
    return Found(head, K.Function)


ELIXIR = LanguageSpec(
    name="elixir",
    rules={"call": Rule(K.Function, _elixir_call)},
    leading=(
        "(comment) @doc",
        "((unary_operator operand: (call target: (identifier) @_attr)) @doc"
        ' (#any-of? @_attr "doc" "spec" "impl"))',
    ),
    merge_clauses=True,
)

# ---------------------------------------------------------------------------------------
# Haskell
# ---------------------------------------------------------------------------------------


def _haskell_top_level(resolver: Resolver) -> Resolver:
    def resolve(node: Node) -> Found | None:
        """The inner resolver's answer for top-level declarations only; None for local ones."""
        if node.parent is None or node.parent.type != "declarations":
            return None
        return resolver(node)

    return resolve


def _haskell_bind(node: Node) -> Found | None:
    name = node.child_by_field_name("name")
    return Found(name) if name is not None and name.type == "variable" else None


def _haskell_instance(node: Node) -> Found | None:
    # Like a Rust impl: `instance Show Shape` scopes its methods under "Shape".
    patterns = node.child_by_field_name("patterns")
    if patterns is None:
        return None
    return Found(patterns, emit=False)


HASKELL = LanguageSpec(
    name="haskell",
    rules={
        "function": Rule(K.Function, by_field()),
        "bind": Rule(K.Function, _haskell_bind),
        "signature": Rule(K.Function, _haskell_top_level(by_field())),
        "data_type": Rule(K.Struct, by_field()),
        "newtype": Rule(K.Struct, by_field()),
        "type_synomym": Rule(K.TypeParameter, by_field()),  # sic: the grammar's spelling
        "class": Rule(K.Interface, by_field()),
        "instance": Rule(K.Class, _haskell_instance),
    },
    leading=("(comment) @doc", "(haddock) @doc"),
    merge_clauses=True,
)

# ---------------------------------------------------------------------------------------
# Zig
# ---------------------------------------------------------------------------------------

_ZIG_CONTAINER_KINDS = {"struct": K.Struct, "union": K.Struct, "opaque": K.Struct, "enum": K.Enum}


def _zig_container(expr: Node | None) -> Node | None:
    # VarDecl value -> ErrorUnionExpr -> SuffixExpr -> ContainerDecl
    for _ in range(3):
        if expr is None or expr.type == "ContainerDecl":
            break
        expr = expr.named_children[0] if expr.named_children else None
    return expr if expr is not None and expr.type == "ContainerDecl" else None


def _zig_decl(node: Node) -> Found | None:
    proto = _first_child(node, ("FnProto",))
    if proto is not None:
        if _first_child(node, ("Block",)) is None:
            return None  # extern prototype
        name = proto.child_by_field_name("function")
        return Found(name, K.Function) if name is not None else None
    var = _first_child(node, ("VarDecl",))
    if var is None:
        return None
    name = var.child_by_field_name("variable_type_function")
    if name is None:
        return None
    container = _zig_container(_first_child(var, ("ErrorUnionExpr",)))
    if container is not None:
        decl_type = _first_child(container, ("ContainerDeclType",))
        keyword = _text(decl_type).split("(", 1)[0].strip() if decl_type else "struct"
        return Found(name, _ZIG_CONTAINER_KINDS.get(keyword, K.Struct))
    if node.parent is None or node.parent.type != "source_file":
        return None
    if b"@import" in (var.text or b""):
        return None  # imports are module code, not definitions
    is_const = any(child.type == "const" for child in var.children)
    return Found(name, K.Constant if is_const else K.Variable)


def _zig_test(node: Node) -> Found | None:
    label = _first_child(node, ("STRINGLITERALSINGLE",))
    if label is None:
        return None
    return Found(label, K.Function, name=_text(label).strip('"'))


ZIG = LanguageSpec(
    name="zig",
    rules={"Decl": Rule(K.Function, _zig_decl), "TestDecl": Rule(K.Function, _zig_test)},
    leading=("(doc_comment) @doc", "(line_comment) @doc"),
)

# ---------------------------------------------------------------------------------------
# Registry and language detection
# ---------------------------------------------------------------------------------------

SPECS: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        PYTHON, JAVASCRIPT, TYPESCRIPT, TSX, GO, RUST, JAVA, KOTLIN, C, CPP, CSHARP, RUBY,
        PHP, SWIFT, SCALA, LUA, BASH, ELIXIR, HASKELL, ZIG,
    )
}  # fmt: skip

# Extension -> tree-sitter grammar name. Grammars without a spec above (yaml, json...)
# are still named so that their line windows carry a useful language label.
EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java", ".kt": "kotlin", ".kts": "kotlin",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby", ".ru": "ruby",
    ".php": "php", ".swift": "swift", ".scala": "scala", ".sc": "scala", ".lua": "lua",
    ".sh": "bash", ".bash": "bash", ".zsh": "bash", ".ksh": "bash",
    ".ex": "elixir", ".exs": "elixir", ".hs": "haskell", ".zig": "zig",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json", ".jsonc": "json",
    ".html": "html", ".htm": "html", ".css": "css", ".scss": "scss", ".sql": "sql",
    ".xml": "xml", ".proto": "proto", ".tf": "hcl", ".hcl": "hcl", ".dockerfile": "dockerfile",
    ".m": "objc", ".mm": "objc", ".dart": "dart", ".r": "r", ".jl": "julia",
    ".ml": "ocaml", ".mli": "ocaml_interface", ".erl": "erlang", ".clj": "clojure",
    ".pl": "perl", ".pm": "perl", ".vue": "vue", ".svelte": "svelte", ".nix": "nix",
    ".vim": "vim", ".el": "elisp", ".cmake": "cmake", ".make": "make", ".mk": "make",
    ".ini": "ini", ".rst": "rst", ".tex": "latex", ".fs": "fsharp", ".groovy": "groovy",
    ".gradle": "groovy",
}  # fmt: skip

FILENAMES: dict[str, str] = {
    "Makefile": "make", "GNUmakefile": "make", "makefile": "make",
    "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake",
    "Gemfile": "ruby", "Rakefile": "ruby", "Guardfile": "ruby", "Podfile": "ruby",
    "Vagrantfile": "ruby", "Brewfile": "ruby",
    ".bashrc": "bash", ".bash_profile": "bash", ".profile": "bash", ".zshrc": "bash",
    "BUILD": "starlark", "BUILD.bazel": "starlark", "WORKSPACE": "starlark",
    "Cargo.lock": "toml", "Pipfile": "toml",
}  # fmt: skip

# Interpreter named on a `#!` line -> grammar.
INTERPRETERS: dict[str, str] = {
    "python": "python", "node": "javascript", "nodejs": "javascript", "deno": "typescript",
    "bun": "javascript", "ts-node": "typescript", "bash": "bash", "sh": "bash",
    "zsh": "bash", "ksh": "bash", "dash": "bash", "ruby": "ruby", "php": "php",
    "lua": "lua", "luajit": "lua", "elixir": "elixir", "perl": "perl", "runghc": "haskell",
    "runhaskell": "haskell", "scala": "scala", "swift": "swift", "Rscript": "r",
    "julia": "julia",
}  # fmt: skip


def detect_language(path: str, first_line: str = "") -> str | None:
    """Tree-sitter grammar name for a file, from its name, extension or `#!` line.

    None means "no grammar": the file is chunked in line windows labelled "text".
    """
    base = path.rsplit("/", 1)[-1]
    if base in FILENAMES:
        return FILENAMES[base]
    ext = os.path.splitext(base)[1].lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if base.startswith("Dockerfile"):
        return "dockerfile"
    if first_line.startswith("#!"):
        return _language_from_shebang(first_line)
    return None


def _language_from_shebang(line: str) -> str | None:
    words = line[2:].strip().split()
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    if program == "env":
        # `#!/usr/bin/env -S deno run`: skip env's options and VAR=value pairs.
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if not rest:
            return None
        program = rest[0].rsplit("/", 1)[-1]
    if program in INTERPRETERS:
        return INTERPRETERS[program]
    # python3.11, ruby2.7, lua5.4 ...
    stripped = program.rstrip("0123456789.")
    return INTERPRETERS.get(stripped)
