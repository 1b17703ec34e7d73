"""The Files and Batches endpoints the ``openai`` SDK uses, with a simulated batch engine behind them.

Routes: ``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``,
``DELETE /v1/files/{id}``, ``POST /v1/batches``, ``GET /v1/batches`` (newest first, ``limit``/``after``),
``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``.

A batch advances one step per status request (``BatchFaults.polls_to_complete``), so tests and benchmarks are
deterministic and never sleep. When it finishes, every request line is answered exactly as the live endpoint
would answer its body (``replies.respond``, no sample header: batch lines carry none), into an output file in
a hashed order and an error file for the lines ``error_on`` picks or an expiry leaves undone.
"""

from __future__ import annotations

import json
import re
import threading
import time
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

from .config import FaultConfig
from .http1 import Request
from .replies import Reply, digest, error_body, respond

_JSON = "application/json"
_ENDPOINTS = ("/v1/chat/completions", "/v1/completions")
_FILE = re.compile(r"^/v1/files/([^/]+)(/content)?$")
_BATCH = re.compile(r"^/v1/batches/([^/]+)(/cancel)?$")
_TERMINAL = ("completed", "failed", "expired", "cancelled")


def _json(status: int, obj: Any) -> Reply:
    return status, json.dumps(obj).encode(), _JSON, []


def _error(status: int, message: str, code: str | None = None) -> Reply:
    return status, error_body(message, "invalid_request_error", code), _JSON, []


class BatchStore:
    """Uploaded files and batches, in memory; thread-safe (the loop thread serves, tests read counters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._files: dict[str, dict[str, Any]] = {}
        self._contents: dict[str, bytes] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._lines: dict[str, list[bytes]] = {}  # batch id -> its input lines
        self._polls: dict[str, int] = {}
        self.counters = {"files_uploaded": 0, "batches_created": 0, "submit_attempts": 0, "cancelled": 0,
                         "requests_submitted": 0}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counters, "batch_ids": list(self._batches)}

    def handle(self, config: FaultConfig, request: Request) -> Reply:
        with self._lock:
            return self._route(config, request)

    def _route(self, config: FaultConfig, request: Request) -> Reply:
        method, path = request.method, request.path
        if path == "/v1/files" and method == "POST":
            return self._upload(request)
        if path == "/v1/batches" and method == "POST":
            return self._create(config, request)
        if path == "/v1/batches" and method == "GET":
            return self._list(request.query)
        if match := _FILE.match(path):
            return self._file(method, match.group(1), bool(match.group(2)))
        if match := _BATCH.match(path):
            batch_id, cancel = match.group(1), bool(match.group(2))
            if batch_id not in self._batches:
                return _error(404, f"No batch found with id '{batch_id}'.", "not_found")
            if cancel and method == "POST":
                return self._cancel(batch_id)
            if not cancel and method == "GET":
                return _json(200, self._advance(config, batch_id))
        return _error(404, f"no route for {method} {path}", "unknown_url")

    # -- files ---------------------------------------------------------------------------------------------

    def _new_file(self, content: bytes, filename: str, purpose: str) -> str:
        file_id = f"file-{len(self._files) + 1:06d}"
        self._files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                                "filename": filename, "purpose": purpose, "status": "processed"}
        self._contents[file_id] = content
        return file_id

    def _upload(self, request: Request) -> Reply:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return _error(400, "uploads must be multipart/form-data")
        message = BytesParser(policy=policy.default).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body)
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
        if "file" not in fields or "purpose" not in fields:
            return _error(400, "an upload needs the fields 'file' and 'purpose'")
        filename, content = fields["file"]
        purpose = fields["purpose"][1].decode()
        file_id = self._new_file(content, filename or "upload.jsonl", purpose)
        self.counters["files_uploaded"] += 1
        return _json(200, self._files[file_id])

    def _file(self, method: str, file_id: str, content: bool) -> Reply:
        if file_id not in self._files:
            return _error(404, f"No such File object: {file_id}", "not_found")
        if content and method == "GET":
            return 200, self._contents[file_id], "application/octet-stream", []
        if not content and method == "GET":
            return _json(200, self._files[file_id])
        if not content and method == "DELETE":
            del self._files[file_id], self._contents[file_id]
            return _json(200, {"id": file_id, "object": "file", "deleted": True})
        return _error(405, f"{method} not allowed here")

    # -- batches -------------------------------------------------------------------------------------------

    def _create(self, config: FaultConfig, request: Request) -> Reply:
        faults = config.batch
        self.counters["submit_attempts"] += 1
        if self.counters["submit_attempts"] <= faults.submit_429:
            status, body, kind, headers = _error(429, "Too many batch creations (injected).", "rate_limit_exceeded")
            return status, body, kind, [("retry-after", "0")]
        try:
            payload = json.loads(request.body)
        except ValueError:
            return _error(400, "request body is not valid JSON")
        file_id = payload.get("input_file_id")
        if file_id not in self._files:
            return _error(400, f"input_file_id {file_id!r} does not exist", "invalid_file")
        if payload.get("endpoint") not in _ENDPOINTS:
            return _error(400, f"unsupported endpoint {payload.get('endpoint')!r}")
        if payload.get("completion_window") not in faults.completion_windows:
            return _error(400, f"completion_window must be one of {', '.join(faults.completion_windows)}")
        content = self._contents[file_id]
        lines = [line for line in content.split(b"\n") if line.strip()]
        self.counters["batches_created"] += 1
        self.counters["requests_submitted"] += len(lines)
        number = self.counters["batches_created"]
        batch_id = f"batch_{number:06d}"
        now = int(time.time())
        self._batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": payload["endpoint"], "errors": None,
            "input_file_id": file_id, "completion_window": payload["completion_window"], "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + 86_400, "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": payload.get("metadata") or {}, "_expire": number <= faults.expire_first,
        }
        if len(lines) > faults.max_requests or len(content) > faults.max_bytes:
            self._fail(batch_id, f"the input file has {len(lines)} requests / {len(content)} bytes, over the "
                       f"limit of {faults.max_requests} / {faults.max_bytes}")
        self._lines[batch_id] = lines
        self._polls[batch_id] = 0
        return _json(200, self._public(batch_id))

    def _public(self, batch_id: str) -> dict[str, Any]:
        return {k: v for k, v in self._batches[batch_id].items() if not k.startswith("_")}

    def _fail(self, batch_id: str, message: str) -> None:
        batch = self._batches[batch_id]
        batch.update(status="failed", failed_at=int(time.time()),
                     errors={"object": "list", "data": [{"code": "invalid_file", "message": message}]})

    def _list(self, query: str) -> Reply:
        params = parse_qs(query)
        limit = int(params.get("limit", ["20"])[0])
        ids = list(reversed(self._batches))  # newest first, as the API lists them
        after = params.get("after", [None])[0]
        if after in ids:
            ids = ids[ids.index(after) + 1:]
        page = ids[:limit]
        data = [self._public(b) for b in page]
        return _json(200, {"object": "list", "data": data, "first_id": page[0] if page else None,
                           "last_id": page[-1] if page else None, "has_more": len(ids) > limit})

    def _cancel(self, batch_id: str) -> Reply:
        batch = self._batches[batch_id]
        if batch["status"] in _TERMINAL:
            return _error(409, f"Cannot cancel a batch with status '{batch['status']}'.")
        batch.update(status="cancelling", cancelling_at=int(time.time()))
        self.counters["cancelled"] += 1
        return _json(200, self._public(batch_id))

    def _advance(self, config: FaultConfig, batch_id: str) -> dict[str, Any]:
        """One status request: move the batch one step along its life and answer its state."""
        batch = self._batches[batch_id]
        if batch["status"] in _TERMINAL:
            return self._public(batch_id)
        now = int(time.time())
        if batch["status"] == "cancelling":
            batch.update(status="cancelled", cancelled_at=now)
            return self._public(batch_id)
        self._polls[batch_id] += 1
        polls, needed = self._polls[batch_id], config.batch.polls_to_complete
        total = batch["request_counts"]["total"]
        if polls < needed:
            if polls > 1:
                batch.update(status="in_progress", in_progress_at=batch["in_progress_at"] or now)
                batch["request_counts"]["completed"] = total * (polls - 1) // needed
            return self._public(batch_id)
        self._finish(config, batch_id, now)
        return self._public(batch_id)

    def _finish(self, config: FaultConfig, batch_id: str, now: int) -> None:
        batch = self._batches[batch_id]
        lines = self._lines[batch_id]
        done_count = int(len(lines) * config.batch.expire_done) if batch["_expire"] else len(lines)
        outputs: list[tuple[bytes, bytes]] = []  # (order key, line)
        errors: list[bytes] = []
        for index, raw in enumerate(lines):
            line = self._answer(config, batch_id, index, raw, expired=index >= done_count)
            failed = line["response"] is None or line["response"]["status_code"] >= 400
            encoded = json.dumps(line).encode()
            if failed:
                errors.append(encoded)
            else:
                order = digest(b"order", raw) if config.batch.shuffle_output else index.to_bytes(8, "big")
                outputs.append((order, encoded))
        outputs.sort()
        if outputs:
            batch["output_file_id"] = self._new_file(b"".join(line + b"\n" for _, line in outputs),
                                                     f"{batch_id}_output.jsonl", "batch_output")
        if errors:
            batch["error_file_id"] = self._new_file(b"".join(line + b"\n" for line in errors),
                                                    f"{batch_id}_error.jsonl", "batch_output")
        status = "expired" if batch["_expire"] else "completed"
        batch.update(status=status, finalizing_at=now, **{f"{status}_at": now},
                     in_progress_at=batch["in_progress_at"] or now)
        batch["request_counts"].update(completed=len(outputs), failed=len(errors))

    def _answer(self, config: FaultConfig, batch_id: str, index: int, raw: bytes, expired: bool) -> dict[str, Any]:
        request_id = f"req_{digest(batch_id.encode(), str(index).encode()).hex()[:16]}"
        try:
            item = json.loads(raw)
            custom_id, url, body = item["custom_id"], item["url"], item["body"]
        except (ValueError, KeyError, TypeError):
            return {"id": request_id, "custom_id": None, "response": None,
                    "error": {"code": "invalid_line", "message": f"line {index + 1} is not a batch request"}}
        line: dict[str, Any] = {"id": f"batch_req_{request_id[4:]}", "custom_id": custom_id, "error": None}
        if expired:
            line["response"] = None
            line["error"] = {"code": "batch_expired",
                             "message": "This request could not be executed before the completion window expired."}
            return line
        body_bytes = json.dumps(body).encode()
        for substring, status in config.batch.error_on.items():
            if substring in body_bytes.decode():
                message = f"Request failed in the batch (injected {status})."
                line["response"] = {"status_code": status, "request_id": request_id,
                                    "body": json.loads(error_body(message, "invalid_request_error"))}
                return line
        key = digest(b"POST", url.encode(), body_bytes, b"")
        status, reply, _, _ = respond(config, Request("POST", url, {}, body_bytes, True), None, key, "")
        line["response"] = {"status_code": status, "request_id": request_id, "body": json.loads(reply)}
        return line
