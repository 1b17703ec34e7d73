"""Content parts of a message: ``text`` and ``image_url`` parts pass through; ``{image: file}`` embeds a file.

A message's content may be a list of parts, exactly as the chat API takes it. Parts the API defines
(``text``, ``image_url``, ``input_audio``, ...) are sent untouched, except that a text part's text is a
template like any content. The shorthand ``{image: photos/cat.png}`` (optionally with ``detail``) becomes an
``image_url`` part whose URL is the file as a ``data:`` URL, so a suite can show a model local pictures.

The file is resolved against the suite's folder, must stay inside the project (symlinks are followed
first), must be a PNG, JPEG, GIF or WebP by its own bytes, and may be at most ``MAX_IMAGE_BYTES``: it is
stored in every recording of a request that carries it. The data URL is a pure function of the file's
bytes, so a request's match key changes exactly when the picture does.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

MAX_IMAGE_BYTES = 4 * 1024 * 1024
DETAILS = ("auto", "low", "high")
# Magic bytes by MIME type; the file's suffix is not trusted.
_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


class ImageError(ValueError):
    """An ``{image: ...}`` part that cannot be embedded; the message says why."""


def is_shorthand(part: Any) -> bool:
    return isinstance(part, Mapping) and "image" in part and "type" not in part


def shorthand_parts(content: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(content, list):
        yield from (part for part in content if is_shorthand(part))


def _mime(data: bytes) -> str | None:
    for mime, signatures in _SIGNATURES.items():
        if data.startswith(signatures):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def resolve_image(ref: Any, base: Path, root: Path) -> Path:
    """The file an ``image:`` reference names; refuses anything outside the project, missing or too big."""
    if not isinstance(ref, str) or not ref.strip():
        raise ImageError(f"image must be a file path, got {ref!r}")
    path = (base / ref).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ImageError(f"image {ref!r} is outside the project root {root}")
    if not path.is_file():
        raise ImageError(f"image file not found: {ref}")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ImageError(f"image {ref!r} is {size:,} bytes; the limit is {MAX_IMAGE_BYTES:,} "
                         "(it is stored in every recording of the request)")
    with path.open("rb") as fh:
        if _mime(fh.read(16)) is None:
            raise ImageError(f"{ref!r} is not a PNG, JPEG, GIF or WebP image (by its bytes)")
    return path


@functools.lru_cache(maxsize=64)
def _data_url(path: Path, size: int, mtime_ns: int) -> str:
    data = path.read_bytes()
    mime = _mime(data)
    if mime is None:
        raise ImageError(f"{path.name} is not a PNG, JPEG, GIF or WebP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def data_url(path: Path) -> str:
    stat = path.stat()  # in the cache key: an edited picture is read again
    return _data_url(path, stat.st_size, stat.st_mtime_ns)


def check_shorthand(part: Mapping[str, Any]) -> None:
    extra = sorted(set(part) - {"image", "detail"})
    if extra:
        raise ImageError(f"unknown key {extra[0]!r} in an image part; allowed: image, detail")
    if "detail" in part and part["detail"] not in DETAILS:
        raise ImageError(f"detail must be one of {', '.join(DETAILS)}, got {part['detail']!r}")


def embed(part: Mapping[str, Any], ref: str, base: Path, root: Path) -> dict[str, Any]:
    check_shorthand(part)
    image_url: dict[str, Any] = {"url": data_url(resolve_image(ref, base, root))}
    if "detail" in part:
        image_url["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image_url}


def render_parts(content: list[Any], render: Callable[[str], str] | None, base: Path,
                 root: Path) -> list[Any]:
    """A list of parts as sent: text templated (when ``render`` is given), images embedded, others as is."""
    parts = []
    for part in content:
        if is_shorthand(part):
            ref = part["image"]
            if render is not None and isinstance(ref, str):
                ref = render(ref)
            part = embed(part, ref, base, root)
        elif render is not None and isinstance(part, Mapping) and isinstance(part.get("text"), str):
            part = {**part, "text": render(part["text"])}
        parts.append(part)
    return parts


def text_of(content: Any) -> str:
    """The text of a content: a string, or its text parts joined (what a text-only endpoint can take)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text")
        return "".join(map(str, texts))
    return "" if content is None else str(content)


def has_non_text(content: Any) -> bool:
    return isinstance(content, list) and any(
        is_shorthand(p) or (isinstance(p, Mapping) and p.get("type", "text") != "text") for p in content
    )
