"""Safe YAML loading that remembers the line of every key and list item, so errors can point at them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from harness.errors import Location, SuiteError

# A "billion laughs" document expands a few aliases into billions of nodes once walked; no real suite
# needs more than a handful of aliases.
MAX_ALIASES = 200


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping that also knows the line of itself and of each key (1-based)."""

    line: int | None = None
    key_lines: dict[str, int]


class LineList(list):  # type: ignore[type-arg]
    line: int | None = None
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.YAMLError(
                    f"more than {MAX_ALIASES} aliases (line {event.start_mark.line + 1}); "
                    "refusing a possible alias bomb"
                )
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> LineDict:  # type: ignore[override]
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
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
        return result

    def construct_sequence(self, node: SequenceNode, deep: bool = False) -> LineList:  # type: ignore[override]
        result = LineList(self.construct_object(child, deep=True) for child in node.value)  # type: ignore[no-untyped-call]
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)


def load_yaml_text(text: str, file: str) -> Any:
    """Parse one YAML document; a syntax error becomes a ``SuiteError`` at its line."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise SuiteError(Location(file, line, ""), f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(Location(file, None, ""), f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


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
        raise SuiteError(
            Location(display, line, ""), f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
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
