"""Checks on values the JSON Schema cannot express: finite numbers, JSON-only types, endpoint URLs and
credentials put where they would be recorded. Each failure names the file, the line and the field."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from harness.errors import Location, SuiteError
from harness.suite.yamlread import line_of

# Header and parameter names that carry credentials, compared without case, dashes or underscores.
_SECRET_NAMES = frozenset({
    "authorization", "proxyauthorization", "apikey", "xapikey", "openaiapikey", "organization",
    "openaiorganization", "project", "openaiproject", "token", "accesstoken", "bearer", "cookie",
    "ocpapimsubscriptionkey", "xgoogapikey", "clientsecret", "password", "secret",
})
_SECRET_PARTS = ("secret", "password", "apikey", "authorization", "credential")
# Values shaped like a key or a bearer credential: OpenAI-style keys, "Bearer ..." and "Basic ...".
_SECRET_VALUE = re.compile(r"^(?:sk-|sk_|sess-|Bearer\s|Basic\s)", re.IGNORECASE)
_HIGH_ENTROPY = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)[A-Za-z0-9_\-]{24,}$")

USE_KEY_ENV = ("credentials never go in a suite (they would be recorded in cassettes and results); put the "
               "key in an environment variable and name it with the model's `api_key_env`")


def field_path(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def walk(value: Any, prefix: str, line: int | None) -> Iterator[tuple[Any, str, int | None, Any, Any]]:
    """Every value under ``value`` with its field path and line, and the container and key it sits at.

    Iterative, so a value nested deeply (in a case file read as JSON) cannot exhaust the stack.
    """
    stack: list[tuple[Any, str, int | None, Any, Any]] = [(value, prefix, line, None, None)]
    while stack:
        item = stack.pop()
        yield item
        node, path, at = item[0], item[1], item[2]
        if isinstance(node, Mapping):
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        for key, child in reversed(children):
            stack.append((child, field_path(path, key), line_of(node, key) or at, node, key))


def check_plain_data(data: Any, file: str, prefix: str = "", line: int | None = None) -> None:
    """Refuse NaN/infinite numbers and values JSON cannot hold (binary, sets, ...) anywhere in ``data``."""
    if _all_plain(data):
        return  # the usual case, told without building a field path and a line for every value
    for value, path, at, _, _ in walk(data, prefix, line):
        if isinstance(value, float) and not math.isfinite(value):
            raise SuiteError(Location(file, at, path or "(top level)"),
                             f"{value} is not a usable number (and is not JSON); write a finite number")
        if value is not None and not isinstance(value, str | int | float | bool | Mapping | list):
            raise SuiteError(Location(file, at, path or "(top level)"),
                             f"a {type(value).__name__} value cannot be used here; write plain text, a number, "
                             "a list or a mapping")


def _all_plain(data: Any) -> bool:
    """Whether every value under ``data`` passes ``check_plain_data`` (iterative, like ``walk``)."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                return False
        elif value is not None and not isinstance(value, str | int | bool):
            return False
    return True


def check_base_url(url: str, location: Location) -> None:
    """An endpoint the HTTP client can call: http(s), a host, a valid port."""
    parts = urlsplit(url)
    if "://" not in url or parts.scheme not in ("http", "https"):
        shown = f"{parts.scheme}://" if "://" in url else "no scheme"
        raise SuiteError(location, f"base_url must start with http:// or https:// (got {shown})")
    if not parts.hostname:
        raise SuiteError(location, "base_url has no host (expected like http://127.0.0.1:8080/v1)")
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        raise SuiteError(location, "base_url has an invalid port (must be 1-65535)") from None
    if parts.port == 0:
        raise SuiteError(location, "base_url has an invalid port (must be 1-65535)")


def _looks_secret_name(key: Any) -> bool:
    name = re.sub(r"[^a-z0-9]", "", str(key).lower())
    return name in _SECRET_NAMES or any(part in name for part in _SECRET_PARTS)


def looks_like_key(value: str) -> bool:
    """A string shaped like an API key itself (never echoed back in messages)."""
    return bool(_SECRET_VALUE.match(value) or _HIGH_ENTROPY.match(value))


def check_no_credentials(params: Any, file: str, prefix: str, line: int | None) -> None:
    """Refuse credential-looking names or values in request params (and their extra headers/query/body)."""
    for value, path, at, _, key in walk(params, prefix, line):
        if key is not None and not isinstance(key, int) and _looks_secret_name(key):
            raise SuiteError(Location(file, at, path), f"{key!r} looks like a credential; {USE_KEY_ENV}")
        if isinstance(value, str) and _SECRET_VALUE.match(value):
            raise SuiteError(Location(file, at, path), f"this value looks like a credential; {USE_KEY_ENV}")


def check_key_env(name: Any, location: Location) -> None:
    """``api_key_env`` names a variable; a value shaped like a key is refused without repeating it."""
    if isinstance(name, str) and looks_like_key(name):
        raise SuiteError(location, "this looks like an API key, not the name of an environment variable: "
                                   "never put the key itself in a suite; set it in a variable (like "
                                   "OPENAI_API_KEY) and give that name")
