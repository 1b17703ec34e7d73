"""Safe YAML loading that remembers the line of every key and list item, so errors can point at them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import Location, SuiteError

# A "billion laughs" document is a few lines whose aliases expand into billions of nodes once walked.
# What is limited is the expansion: the nodes the aliases stand for, counted as if copied. Real suites that
# share a grader block or a vars mapping through anchors stay far below this.
MAX_ALIAS_EXPANSION = 100_000
# Nesting deeper than this is refused where it happens: composing and constructing recurse, so a document
# nested thousands deep would otherwise end in a RecursionError. Real suites nest a dozen levels at most.
MAX_DEPTH = 100


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping that also knows the line of itself, of each key and of each value's first text line."""

    line: int | None = None
    key_lines: dict[str, int]
    value_lines: dict[str, int]


class LineList(list):  # type: ignore[type-arg]
    line: int | None = None
    item_lines: list[int]


class DateText(str):
    """Text YAML would have read as a date or time; kept as written, marked so fields that cannot be a date
    (such as a case's `label`) can say so."""

    __slots__ = ()


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded = 0
        self._sizes: dict[int, int] = {}
        self._depth = 0

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # Flow brackets are limited as the scanner meets them: its bookkeeping grows with the flow depth, so
        # 5,000 nested `[` would cost a second of scanning before the composer saw the first node.
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                            self.get_mark())
        super().fetch_flow_collection_start(token_class)  # type: ignore[misc]

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
            )
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                self._expanded += self._size(target)
                if self._expanded > MAX_ALIAS_EXPANSION:
                    raise yaml.composer.ComposerError(
                        None, None,
                        f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} values; refusing a possible "
                        "alias bomb (\"billion laughs\")",
                        event.start_mark,
                    )
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def _size(self, node: Node) -> int:
        """Values under ``node`` once aliases are expanded; memoised, so each distinct node is walked once."""
        key = id(node)
        if key in self._sizes:
            return self._sizes[key]
        self._sizes[key] = 1  # a recursive alias (an anchor used inside itself) counts once
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(self._size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(self._size(k) + self._size(v) for k, v in node.value)
        self._sizes[key] = total
        return total

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> LineDict:  # type: ignore[override]
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        result.value_lines = {}
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                )
            key = str(key)
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            result[key] = self.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
            result.key_lines[key] = key_node.start_mark.line + 1
            # A block scalar (| or >) starts on the line after its indicator.
            block = isinstance(value_node, ScalarNode) and value_node.style in ("|", ">")
            result.value_lines[key] = value_node.start_mark.line + 1 + (1 if block else 0)
        return result

    def construct_sequence(self, node: SequenceNode, deep: bool = False) -> LineList:  # type: ignore[override]
        result = LineList(self.construct_object(child, deep=True) for child in node.value)  # type: ignore[no-untyped-call]
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


    def construct_timestamp_text(self, node: ScalarNode) -> str:
        """A date or time is kept as the text written (a ``DateText``): suites hold JSON-like data, and a date
        in `vars` means that text, not a Python ``date`` that JSON cannot store."""
        return DateText(self.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_timestamp_text)

_CParser: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None)  # libyaml, when PyYAML was built with it


class _FastLoader(_CParser or object, _Loader):  # type: ignore[misc]
    """``_Loader`` with libyaml's C scanner and parser under it: everything above the events (composing with
    the depth and alias-bomb limits, constructing with line numbers) is ``_Loader``'s own Python, so a
    document that loads gives the same values and lines. Scanning and parsing were ~80% of loading a suite of
    10,000 inline cases; in C they take a fifth of the time. Errors are left to the pure-Python ``_Loader``
    (``load_yaml_text`` loads the text again with it), so every message and mark stays as it was."""

    def __init__(self, stream: str) -> None:
        _CParser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._expanded = 0
        self._sizes = {}
        self._depth = 0

    # The C parser also composes, without the limits; the Python composer is used on its events instead.
    check_node = yaml.composer.Composer.check_node
    get_node = yaml.composer.Composer.get_node
    get_single_node = yaml.composer.Composer.get_single_node


_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_MERGE_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})
# libyaml refuses nesting deeper than 1,000 levels from 0.2.5 on; earlier releases would let a deep document
# recurse in the C composer without limit, so they never compose in C.
_C_COMPOSE_OK = _CParser is not None and getattr(yaml._yaml, "get_version", lambda: (0, 0, 0))() >= (0, 2, 5)


_WILDCARD: list[Any] = list(yaml.resolver.Resolver.yaml_implicit_resolvers.get(None, []))
_IMPLICIT: dict[str, list[Any]] = {first: [*resolvers, *_WILDCARD]
                                   for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
                                   if first is not None}


class _TooDeep(Exception):
    """Raised by the C-composed path for anything it does not take on; the caller falls back."""


class _CComposedLoader(_FastLoader):
    """``_FastLoader`` composing in C too, with a lean constructor: for a document without aliases (the
    caller checks), the one thing besides depth that the Python composer is there to limit. Depth is
    checked while constructing; a document nested past ``MAX_DEPTH`` is handed back to the pure-Python
    loader, which refuses it with its usual message. Values and lines are exactly ``_Loader``'s: plain text
    and the two collection types are built here, every other tag by ``_Loader``'s own constructors.
    Composing and constructing were four fifths of loading a suite of 10,000 inline cases."""

    check_node = _CParser.check_node if _CParser is not None else None
    get_node = _CParser.get_node if _CParser is not None else None
    get_single_node = _CParser.get_single_node if _CParser is not None else None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """``Resolver.resolve`` for the case libyaml calls it for most: a plain or quoted scalar, with the
        implicit resolvers grouped by first character once (the same regular expressions, in the same
        order, so the same tag)."""
        if kind is not ScalarNode:
            return super().resolve(kind, value, implicit)
        if implicit[0]:
            for tag, regexp in _IMPLICIT.get(value[:1], _WILDCARD):
                if regexp.match(value):
                    return tag
        return _STR

    # No path resolvers are registered, so descending and ascending resolvers is bookkeeping for nothing.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def construct_document(self, node: Node) -> Any:
        data = self._build(node, 0)
        # What BaseConstructor.construct_document does after building: run any deferred constructors.
        while self.state_generators:
            generators, self.state_generators = self.state_generators, []
            for generator in generators:
                for _ in generator:
                    pass
        self.constructed_objects, self.recursive_objects, self.deep_construct = {}, {}, False
        return data

    def _build(self, node: Node, depth: int) -> Any:
        if depth >= MAX_DEPTH:
            raise _TooDeep
        kind, tag = type(node), node.tag
        if kind is ScalarNode and tag == _STR:
            return node.value
        if kind is MappingNode and tag == _MAP:
            return self._mapping(node, depth + 1)
        if kind is SequenceNode and tag == _SEQ:
            result = LineList(self._build(child, depth + 1) for child in node.value)
            result.line = node.start_mark.line + 1
            result.item_lines = [child.start_mark.line + 1 for child in node.value]
            return result
        return self.construct_object(node, deep=True)  # type: ignore[no-untyped-call]

    def _mapping(self, node: MappingNode, depth: int) -> LineDict:
        result = LineDict()
        result.line = node.start_mark.line + 1
        key_lines: dict[str, int] = {}
        value_lines: dict[str, int] = {}
        result.key_lines, result.value_lines = key_lines, value_lines
        if any(key_node.tag in _MERGE_TAGS for key_node, _ in node.value):
            self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self._build(key_node, depth)
            if not isinstance(key, str):
                if not isinstance(key, int | float | bool) and key is not None:
                    raise _TooDeep  # the pure-Python loader names the bad key
                key = str(key)
            if key in result:
                raise _TooDeep
            result[key] = self._build(value_node, depth)
            key_lines[key] = key_node.start_mark.line + 1
            block = type(value_node) is ScalarNode and value_node.style in ("|", ">")
            value_lines[key] = value_node.start_mark.line + 1 + (1 if block else 0)
        return result


def _load_fast(text: str) -> tuple[bool, Any]:
    """(True, the document) when libyaml loads it; (False, None) when it is missing or found a problem."""
    if _CParser is None:
        return False, None
    try:
        # An alias needs the Python composer's expansion limit; text without a `*` can hold none.
        loader = _CComposedLoader(text) if _C_COMPOSE_OK and "*" not in text else _FastLoader(text)
    except Exception:  # noqa: BLE001 - any failure here is reported by the pure-Python loader
        return False, None
    try:
        return True, loader.get_single_data()
    except (yaml.YAMLError, RecursionError, _TooDeep):
        return False, None
    finally:
        loader.dispose()


def load_yaml_text(text: str, file: str) -> Any:
    """Parse one YAML document; a syntax error becomes a ``SuiteError`` at its line."""
    loaded, document = _load_fast(text)
    if loaded:
        return document
    try:
        loader = _Loader(text)  # the reader checks every character up front (a NUL byte fails here)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    try:
        return loader.get_single_data()
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    except yaml.MarkedYAMLError as exc:
        mark = _error_mark(exc)
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or str(exc)
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            problem = f"{problem} ({exc.context} at line {exc.context_mark.line + 1})"
        elif exc.context and mark is exc.context_mark and exc.problem_mark is not None:
            opened = exc.context.removeprefix("while parsing ")
            problem = f"{opened} opened here is never closed ({problem} at line {exc.problem_mark.line + 1})"
        raise SuiteError(Location(file, line, key_path_at(text, line)), f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(Location(file, 1, "(top level)"), f"invalid YAML: {exc}") from None
    except RecursionError:  # a safety net under MAX_DEPTH, for a stack already deep when loading starts
        raise SuiteError(Location(file, 1, "(top level)"), "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _error_mark(exc: yaml.MarkedYAMLError) -> Any:
    """Where the user's mistake is. An unclosed ``{`` or ``[`` is noticed only where the parser meets the
    next block (often the next top-level key); the mistake is the bracket, so its line is the one named."""
    unclosed = exc.context is not None and exc.context.startswith("while parsing a flow")
    if unclosed and exc.context_mark is not None:
        return exc.context_mark
    return exc.problem_mark or exc.context_mark


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> SuiteError:
    line = text.count("\n", 0, exc.position) + 1
    what = "a NUL byte" if exc.character == 0 else f"the control character U+{exc.character:04X}"
    return SuiteError(Location(file, line, key_path_at(text, line)),
                      f"invalid YAML: {what} (character {exc.position}) is not allowed in YAML text")


_KEY_LINE = re.compile(r"""^(\s*)((?:-\s+)*)([^\s#'"{}\[\],:-][^#{}\[\],:]*?|"[^"]*"|'[^']*')\s*:(?:\s|$)""")


def key_path_at(text: str, line: int) -> str:
    """The dotted path of mapping keys enclosing ``line``, judged by indentation.

    Used only where the parser gave up (syntax errors, undecodable bytes), so no parsed document can tell
    which field the line belongs to; list indexes are left out since they cannot be judged reliably.
    """
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines()[:line]:
        match = _KEY_LINE.match(raw.replace("\t", " "))
        if not match:
            continue
        indent = len(match.group(1)) + len(match.group(2))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(3).strip("'\"")))
    return ".".join(key for _, key in stack) or "(top level)"


def read_text(path: Path, display: str, location: Location | None = None) -> str:
    """Read a UTF-8 file, turning missing or undecodable files into located errors."""
    where = location or Location(display)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SuiteError(where, f"file not found: {display}") from None
    except IsADirectoryError:
        raise SuiteError(where, f"is a folder, not a file: {display}") from None
    except OSError as exc:
        raise SuiteError(where, f"cannot read {display}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        field = location.field if location else key_path_at(data.decode("utf-8", "replace"), line)
        raise SuiteError(
            Location(display, line, field), f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None


def line_of(container: Any, key: Any) -> int | None:
    """The line of ``container[key]``, falling back to the container's own line."""
    if isinstance(container, LineDict):
        return container.key_lines.get(str(key), container.line)
    if isinstance(container, LineList):
        if isinstance(key, int) and 0 <= key < len(container.item_lines):
            return container.item_lines[key]
        return container.line
    return None


def value_line(container: Any, key: str) -> int | None:
    """The line where the text of ``container[key]`` starts (after a block scalar's indicator)."""
    if isinstance(container, LineDict):
        return container.value_lines.get(key) or line_of(container, key)
    return None


def line_at_path(root: Any, path: list[Any]) -> int | None:
    """The line of the value at a JSON path (as jsonschema reports it) inside a loaded document."""
    node = root
    line = getattr(root, "line", None)
    for key in path:
        here = line_of(node, key)
        if here is not None:
            line = here
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    return line


def plain(value: Any) -> Any:
    """Strip the line-tracking types, so what the suite holds are ordinary dicts and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
