"""The history index: ``reports/index.sqlite``, a cache of every run folder's headline numbers.

Several runs may end at once (a CI matrix on one machine, parallel shards), so the file is in WAL mode with a
busy timeout and every write is one ``BEGIN IMMEDIATE`` transaction. The run folders are the truth: reading
the index first syncs it with them (new, changed and deleted folders, found by a cheap stat of two files per
run), and a missing or corrupt file is rebuilt from them — a broken cache never stops a command.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.history.digest import RunDigest, digest_run
from harness.store import MANIFEST_FILE, folder_stamp
from harness.store.files import locked

INDEX_FILE = "index.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

_RUN_COLUMNS = ("started_at", "finished_at", "status", "trials_planned", "trials_done", "commit_sha", "branch",
                "dirty", "harness_version", "suite_hash")  # fmt: skip
_VARIANT_COLUMNS = ("variant", "model", "prompt", "temperature", "n_cases", "n_trials", "errors", "pass_rate",
                    "pass_low", "pass_high", "pass_method", "score", "cost_per_case", "cost_total",
                    "judge_cost_total", "latency_p50_s", "latency_p95_s", "ttft_p50_s")  # fmt: skip
_CASE_COLUMNS = ("variant", "case_id", "trials", "passed", "failed", "errors", "score")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    suite TEXT NOT NULL, run_id TEXT NOT NULL, path TEXT NOT NULL, stamp TEXT NOT NULL,
    started_at REAL, finished_at REAL, status TEXT, trials_planned INTEGER, trials_done INTEGER,
    commit_sha TEXT, branch TEXT, dirty INTEGER, harness_version TEXT, suite_hash TEXT,
    PRIMARY KEY (suite, run_id));
CREATE TABLE IF NOT EXISTS variants (
    suite TEXT NOT NULL, run_id TEXT NOT NULL, variant TEXT NOT NULL, model TEXT, prompt TEXT, temperature REAL,
    n_cases INTEGER, n_trials INTEGER, errors INTEGER, pass_rate REAL, pass_low REAL, pass_high REAL,
    pass_method TEXT, score REAL, cost_per_case REAL, cost_total REAL, judge_cost_total REAL,
    latency_p50_s REAL, latency_p95_s REAL, ttft_p50_s REAL,
    PRIMARY KEY (suite, run_id, variant));
CREATE TABLE IF NOT EXISTS cases (
    suite TEXT NOT NULL, run_id TEXT NOT NULL, variant TEXT NOT NULL, case_id TEXT NOT NULL,
    trials INTEGER, passed INTEGER, failed INTEGER, errors INTEGER, score REAL,
    PRIMARY KEY (suite, run_id, variant, case_id));
CREATE INDEX IF NOT EXISTS runs_by_suite ON runs (suite, started_at);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');
"""


class HistoryIndex:
    """The index of the runs under one reports root."""

    def __init__(self, reports_root: Path) -> None:
        self.root = Path(reports_root)
        self.path = self.root / INDEX_FILE

    # -- connection --------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            with _transaction(conn):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if version is None or int(version[0]) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"index schema {version and version[0]}, expected {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """An open, healthy index: a corrupt file (or one of another schema) is deleted and rebuilt."""
        try:
            conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if _is_contention(exc):
                raise
            conn = self._recreate(str(exc))
        try:
            yield conn
        finally:
            conn.close()

    def _recreate(self, why: str) -> sqlite3.Connection:
        """Replace a broken index by an empty one, once even when several processes find it broken at once."""
        with locked(self.root / (INDEX_FILE + ".lock")):
            try:  # another process may have rebuilt it while this one waited for the lock
                return self._connect()
            except sqlite3.DatabaseError as exc:
                if _is_contention(exc):
                    raise
            print(f"note: {self.path} was unreadable ({why}); rebuilding it from the run folders", file=sys.stderr)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.path}{suffix}").unlink()
            return self._connect()

    # -- writing -------------------------------------------------------------------------------------------
    def record(self, directory: Path) -> None:
        """Add or refresh one run folder (called when a run ends)."""
        digest = digest_run(directory)
        with self.connection() as conn, _transaction(conn):
            _store(conn, digest)

    def sync(self) -> dict[str, int]:
        """Bring the index in line with the run folders: read new or changed runs, forget deleted ones."""
        found = {(d.parent.name, d.name): d for d in _run_folders(self.root)}
        with self.connection() as conn:
            rows = conn.execute("SELECT suite, run_id, stamp FROM runs")
            known = {(r["suite"], r["run_id"]): r["stamp"] for r in rows}
            stale = [k for k in known if k not in found]
            changed = [k for k, d in found.items() if known.get(k) != folder_stamp(d)]
            digests = []
            for key in changed:
                try:
                    digests.append(digest_run(found[key]))
                except (OSError, ValueError) as exc:  # a folder that is not (yet) a readable run
                    print(f"note: history skips {found[key]}: {exc}", file=sys.stderr)
            with _transaction(conn):
                for suite, run_id in stale:
                    _delete(conn, suite, run_id)
                for digest in digests:
                    _store(conn, digest)
        return {"added_or_updated": len(digests), "removed": len(stale), "runs": len(found)}

    def rebuild(self) -> dict[str, int]:
        """Forget everything and read every run folder again."""
        with self.connection() as conn, _transaction(conn):
            for table in ("cases", "variants", "runs"):
                conn.execute(f"DELETE FROM {table}")
        return self.sync()

    # -- reading -------------------------------------------------------------------------------------------
    def runs(self, suite: str | None = None, branch: str | None = None) -> list[dict[str, Any]]:
        """Runs, oldest first."""
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        if suite is not None:
            sql, args = sql + " AND suite = ?", [*args, suite]
        if branch is not None:
            sql, args = sql + " AND branch = ?", [*args, branch]
        with self.connection() as conn:
            return [dict(r) for r in conn.execute(sql + " ORDER BY started_at, run_id", args)]

    def variants(self, suite: str, run_ids: list[str] | None = None) -> list[dict[str, Any]]:
        with self.connection() as conn:
            rows = [dict(r) for r in conn.execute("SELECT * FROM variants WHERE suite = ?", (suite,))]
        wanted = None if run_ids is None else set(run_ids)
        return [r for r in rows if wanted is None or r["run_id"] in wanted]

    def cases(self, suite: str, variant: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM cases WHERE suite = ?", [suite]
        if variant is not None:
            sql, args = sql + " AND variant = ?", [*args, variant]
        with self.connection() as conn:
            return [dict(r) for r in conn.execute(sql, args)]

    def suites(self) -> list[str]:
        with self.connection() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT suite FROM runs ORDER BY suite")]

    def latest_on_branch(self, suite: str, branch: str) -> Path | None:
        """The newest run of ``suite`` made on ``branch`` that finished at least one trial."""
        self.sync()
        with self.connection() as conn:
            row = conn.execute("SELECT path FROM runs WHERE suite = ? AND branch = ? AND trials_done > 0 "
                               "ORDER BY started_at DESC, run_id DESC LIMIT 1", (suite, branch)).fetchone()
        return None if row is None else Path(row[0])


def record_run_quietly(directory: Path, reports_root: Path) -> None:
    """Index a run that just ended; a failure only prints a note (the index is a cache, rebuilt later)."""
    try:
        HistoryIndex(reports_root).record(directory)
    except Exception as exc:  # noqa: BLE001 - the run and its report must never fail because of the cache
        print(f"note: the history index was not updated ({type(exc).__name__}: {exc}); "
              "`harness history --rebuild` restores it", file=sys.stderr)


def _run_folders(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for suite_dir in sorted(root.iterdir()):
        if suite_dir.is_dir() and not suite_dir.is_symlink():
            for run in sorted(suite_dir.iterdir()):
                if run.is_dir() and (run / MANIFEST_FILE).is_file():
                    yield run


def _store(conn: sqlite3.Connection, digest: RunDigest) -> None:
    _delete(conn, digest.suite, digest.run_id)
    m = dict(digest.manifest)
    m["commit_sha"] = m.pop("commit")
    conn.execute(f"INSERT INTO runs (suite, run_id, path, stamp, {', '.join(_RUN_COLUMNS)}) "
                 f"VALUES (?, ?, ?, ?, {', '.join('?' * len(_RUN_COLUMNS))})",
                 (digest.suite, digest.run_id, digest.path, digest.stamp, *(m[c] for c in _RUN_COLUMNS)))
    tables = ((digest.variants, "variants", _VARIANT_COLUMNS), (digest.cases, "cases", _CASE_COLUMNS))
    for rows, table, columns in tables:
        conn.executemany(
            f"INSERT INTO {table} (suite, run_id, {', '.join(columns)}) "
            f"VALUES (?, ?, {', '.join('?' * len(columns))})",
            # getattr, not asdict per column: one deep copy per column and row cost 4% of a 1,000-trial run.
            [(digest.suite, digest.run_id, *(getattr(r, c) for c in columns)) for r in rows],
        )


def _delete(conn: sqlite3.Connection, suite: str, run_id: str) -> None:
    for table in ("cases", "variants", "runs"):
        conn.execute(f"DELETE FROM {table} WHERE suite = ? AND run_id = ?", (suite, run_id))


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # some errors (a corrupt page) end the transaction themselves
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_contention(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)
