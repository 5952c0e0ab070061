"""Which tree-sitter grammar reads a document, and which of its node types matter to completion.

`language_for` maps an LSP languageId (falling back to the file extension when the client
sends an unknown id or `plaintext`) to a `LanguageSpec`: the grammar plus the node-type sets
that `context.py` uses to gate completions (comments, strings), pick LINE vs BLOCK (blocks),
and gather extra context (imports, enclosing scopes). Grammars are the per-language wheels
(`tree-sitter-python`, ...), loaded on first use and cached for the life of the process.
"""

from __future__ import annotations

import importlib
import logging
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from urllib.parse import unquote, urlparse

import tree_sitter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LanguageSpec:
    """A grammar and the node types of it that completion cares about."""

    name: str  # canonical name: "python", "javascript", "tsx", ...
    language: tree_sitter.Language
    string_types: frozenset[str]  # string literals (completing inside one is gated)
    comment_types: frozenset[str]  # comments (never completed in)
    block_types: frozenset[str]  # bodies that hold statements/members: an empty one asks for a BLOCK
    scope_types: frozenset[str]  # function/class/method definitions: their signatures become context
    import_types: frozenset[str]  # top-level import-like statements: become context
    indent_based: bool = False  # True when blocks are opened by ':' + indentation (Python)
    line_comment: str = "//"  # line-comment marker, for the text-only fallback
    # Nodes that hold code inside a string (f-string `{x}`, JS `${x}`): code, not string text.
    code_in_string_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def block_opener(self) -> str:
        """The character that ends a line opening a block: ':' in Python, '{' elsewhere."""
        return ":" if self.indent_based else "{"


@dataclass(frozen=True)
class _Recipe:
    module: str
    loader: str  # attribute of the module returning the grammar pointer
    strings: tuple[str, ...]
    comments: tuple[str, ...]
    blocks: tuple[str, ...]
    scopes: tuple[str, ...]
    imports: tuple[str, ...]
    indent_based: bool = False
    line_comment: str = "//"
    code_in_string: tuple[str, ...] = ()


_C_LIKE_COMMENTS = ("comment",)
_JS_STRINGS = ("string", "template_string", "regex", "string_fragment")
_JS_BLOCKS = ("statement_block", "class_body", "switch_body", "object")
_JS_SCOPES = (
    "function_declaration",
    "function_expression",
    "generator_function_declaration",
    "generator_function",
    "arrow_function",
    "method_definition",
    "class_declaration",
    "class",
)
_TS_EXTRA_SCOPES = ("interface_declaration", "enum_declaration", "abstract_class_declaration", "module")
_TS_EXTRA_BLOCKS = ("interface_body", "enum_body")

_TYPESCRIPT = _Recipe(
    "tree_sitter_typescript",
    "language_typescript",
    strings=_JS_STRINGS,
    comments=_C_LIKE_COMMENTS,
    blocks=_JS_BLOCKS + _TS_EXTRA_BLOCKS,
    scopes=_JS_SCOPES + _TS_EXTRA_SCOPES,
    imports=("import_statement",),
    code_in_string=("template_substitution",),
)

_RECIPES: dict[str, _Recipe] = {
    "python": _Recipe(
        "tree_sitter_python",
        "language",
        strings=("string", "string_content", "concatenated_string"),
        comments=("comment",),
        blocks=("block",),
        scopes=("function_definition", "class_definition"),
        imports=("import_statement", "import_from_statement", "future_import_statement"),
        indent_based=True,
        line_comment="#",
        code_in_string=("interpolation",),
    ),
    "javascript": _Recipe(
        "tree_sitter_javascript",
        "language",
        strings=_JS_STRINGS,
        comments=_C_LIKE_COMMENTS,
        blocks=_JS_BLOCKS,
        scopes=_JS_SCOPES,
        imports=("import_statement",),
        code_in_string=("template_substitution",),
    ),
    "typescript": _TYPESCRIPT,
    "tsx": replace(_TYPESCRIPT, loader="language_tsx"),  # same node types, JSX-aware grammar
    "go": _Recipe(
        "tree_sitter_go",
        "language",
        strings=("interpreted_string_literal", "raw_string_literal", "rune_literal"),
        comments=_C_LIKE_COMMENTS,
        blocks=("block", "field_declaration_list", "interface_type"),
        scopes=("function_declaration", "method_declaration", "func_literal", "type_declaration"),
        imports=("package_clause", "import_declaration"),
    ),
    "rust": _Recipe(
        "tree_sitter_rust",
        "language",
        strings=("string_literal", "raw_string_literal", "char_literal"),
        comments=("line_comment", "block_comment"),
        blocks=("block", "declaration_list", "field_declaration_list", "enum_variant_list"),
        scopes=("function_item", "impl_item", "trait_item", "mod_item", "struct_item", "enum_item"),
        imports=("use_declaration", "extern_crate_declaration"),
    ),
    "java": _Recipe(
        "tree_sitter_java",
        "language",
        strings=("string_literal", "character_literal", "string_fragment", "multiline_string_fragment"),
        comments=("line_comment", "block_comment"),
        blocks=("block", "class_body", "interface_body", "constructor_body", "enum_body"),
        scopes=(
            "class_declaration",
            "interface_declaration",
            "enum_declaration",
            "record_declaration",
            "method_declaration",
            "constructor_declaration",
        ),
        imports=("package_declaration", "import_declaration"),
    ),
    "c": _Recipe(
        "tree_sitter_c",
        "language",
        strings=("string_literal", "char_literal", "system_lib_string", "string_content"),
        comments=_C_LIKE_COMMENTS,
        blocks=("compound_statement", "field_declaration_list", "enumerator_list"),
        scopes=("function_definition", "struct_specifier"),
        imports=("preproc_include",),
    ),
    "cpp": _Recipe(
        "tree_sitter_cpp",
        "language",
        strings=(
            "string_literal",
            "char_literal",
            "raw_string_literal",
            "system_lib_string",
            "string_content",
        ),
        comments=_C_LIKE_COMMENTS,
        blocks=("compound_statement", "field_declaration_list", "declaration_list", "enumerator_list"),
        scopes=("function_definition", "class_specifier", "struct_specifier", "namespace_definition"),
        imports=("preproc_include", "using_declaration"),
    ),
}

# LSP languageIds (https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#textDocumentItem)
_LANGUAGE_IDS: dict[str, str] = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",  # the JS grammar parses JSX
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "cuda-cpp": "cpp",
}

_EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
}


def _extension(uri: str) -> str:
    path = unquote(urlparse(uri).path) if "://" in uri or uri.startswith("file:") else uri
    return posixpath.splitext(path)[1].lower()


@cache
def _load(name: str) -> LanguageSpec | None:
    recipe = _RECIPES[name]
    try:
        module = importlib.import_module(recipe.module)
        loader: Callable[[], object] = getattr(module, recipe.loader)
        language = tree_sitter.Language(loader())
    except Exception:  # a broken or missing grammar wheel disables syntax features, not the server
        log.exception("could not load the tree-sitter grammar for %s (%s)", name, recipe.module)
        return None
    return LanguageSpec(
        name=name,
        language=language,
        string_types=frozenset(recipe.strings),
        comment_types=frozenset(recipe.comments),
        block_types=frozenset(recipe.blocks),
        scope_types=frozenset(recipe.scopes),
        import_types=frozenset(recipe.imports),
        indent_based=recipe.indent_based,
        line_comment=recipe.line_comment,
        code_in_string_types=frozenset(recipe.code_in_string),
    )


def language_for(language_id: str, uri: str = "") -> LanguageSpec | None:
    """The spec for an LSP languageId, else for the extension of `uri`; None when unsupported."""
    name = _LANGUAGE_IDS.get(language_id.lower()) if language_id else None
    if name is None and uri:
        name = _EXTENSIONS.get(_extension(uri))
    return _load(name) if name else None


def supported_language_ids() -> list[str]:
    """The LSP languageIds this server has a grammar for."""
    return sorted(_LANGUAGE_IDS)
