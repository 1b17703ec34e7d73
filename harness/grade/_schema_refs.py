"""``$ref`` in a grader's JSON Schema: resolved only from files inside the suite's project, never the network.

jsonschema would otherwise fetch ``http(s)://`` references (even in a replay that must run offline) and read
``file://`` paths anywhere on disk, putting their content into grade reasons. Every reference is followed
when the suite loads, so a bad one fails ``harness validate``, and the validator gets a registry already
holding every document it needs: nothing is retrieved while grading.

Private (the leading underscore keeps the registry's discovery from importing it as a grader module).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from harness.grade.base import GraderConfigError

INLINE_NAME = "(inline schema).json"  # the document URI of a schema written inline, inside the suite folder


class RefRefused(Exception):
    pass


def _retriever(root: Path | None) -> Any:
    def retrieve(uri: str) -> Resource[Any]:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise RefRefused(f"{uri!r} is not a file of the project; schema references are never fetched from "
                             "the network: save the schema next to the suite and refer to it by relative path")
        if root is None:
            raise RefRefused(f"{uri!r}: this schema cannot refer to files")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(root):
            raise RefRefused(f"{path} is outside the project root {root}")
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RefRefused(f"file not found: {path}") from None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise RefRefused(f"cannot read {path} as JSON: {exc}") from None
        return Resource.from_contents(contents, default_specification=DRAFT202012)

    return retrieve


def _refs(schema: Any) -> Iterator[str]:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                    yield value
                elif key not in ("const", "enum", "examples", "default"):  # data, not subschemas
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def confined_registry(field: str, schema: Mapping[str, Any], base: Path | None,
                      root: Path | None) -> tuple[dict[str, Any], Registry[Any]]:
    """The schema (given a file URI as its base when it has no ``$id``) and a registry holding every document
    its references reach; raises ``GraderConfigError`` naming a reference that leaves the project."""
    document = dict(schema)
    if "$id" not in document and base is not None:
        document["$id"] = base.resolve().as_uri()
    registry: Registry[Any] = Registry(retrieve=_retriever(None if root is None else root.resolve()))
    pending = [(str(document.get("$id", "")), document)]
    seen: set[str] = {pending[0][0]}
    while pending:
        uri, contents = pending.pop()
        for ref in _refs(contents):
            target = urldefrag(urljoin(uri, ref)).url
            if not target or target in seen or target in SPECIFICATIONS:
                continue
            seen.add(target)
            try:
                retrieved = registry.get_or_retrieve(target)
            except Exception as exc:  # noqa: BLE001 - referencing wraps the retriever's refusal
                cause = exc.__cause__ if isinstance(exc.__cause__, RefRefused) else exc
                raise GraderConfigError(field, f"$ref {ref!r} refused: {cause}") from None
            registry = retrieved.registry
            pending.append((target, retrieved.value.contents))
    return document, registry
