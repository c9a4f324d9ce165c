"""Content hashes and the result cache (certificate files: certificates.py).

A claim's *content hash* covers what decides its verdict: the IR of both sides (every binding they reach, not
line numbers or comments), the claim's kind and name. The cache key adds the bound and the encoding version
(`driver.ENCODING_VERSION`, bumped whenever an encoding changes what can be proved), so an unchanged rule is
not proved again and a changed encoding invalidates everything.

Only CERTIFIED and REFUTED results are cached: they are deterministic. UNKNOWN and ERROR are always retried.
Cache modes: `rw` (default), `ro` (CI: read hits, never write; a miss falls back to proving), `off`.

**Cache entries are authenticated.** A cache directory can be written by anyone who can write the checkout (a
pull request can commit `.verify-cache/` with `git add -f`), so an entry is trusted only if it carries an
HMAC-SHA256, under a secret key, of its cache key and its result. The key lives outside the repository:
`VERIFY_CACHE_KEY` (e.g. a CI secret; at least 32 characters) or, failing that, a random key generated on first use in
`$XDG_CACHE_HOME/verify/cache-key` (default `~/.cache/verify/`, mode 0600). An entry that was edited, copied to
another key's slot, or written on another machine or runner (another key) fails the check: it is ignored,
reported in the result (`engines["cache"]` and a warning), proved again, and (mode `rw`) replaced. Without a
usable key the cache is off. A hit answers with the claim's *current* name, file, line and description.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import tempfile
from pathlib import Path

from . import ir
from .claims import Claim
from .options import CacheMode
from .sizes import Bound
from .verdict import Result, Verdict

CACHEABLE = (Verdict.CERTIFIED, Verdict.REFUTED)


def _reachable(side) -> list:
    bindings = side.bindings
    seen: dict[str, ir.Expr] = {}
    stack = [side.expr]
    while stack:
        expr = stack.pop()
        for node in ir.walk(expr):
            if isinstance(node, ir.Ref) and node.name not in seen and node.name in bindings:
                seen[node.name] = bindings[node.name].expr
                stack.append(bindings[node.name].expr)
    return sorted((name, ir.canonical(expr)) for name, expr in seen.items())


def structure(side) -> str:
    """A name-free canonical form of a side: lets inlined, tile counts dropped, scan states by position."""
    return hashlib.sha256(repr(ir.canonical(side.expr, side.bindings, by_position=True)).encode()).hexdigest()


def claim_hash(claim: Claim) -> str:
    """Everything that decides the verdict: both sides, and the preconditions and lemmas the claim carries
    (a claim certified under `B unmasked along m` must not answer for the same claim without it)."""
    content = repr((str(claim.kind), claim.name,   # str: the key of a kind is its text, enum or not
                    ir.canonical(claim.lhs.expr), _reachable(claim.lhs),
                    ir.canonical(claim.rhs.expr), _reachable(claim.rhs),
                    claim.assumptions, claim.unbounded, claim.by_rules.rules if claim.by_rules else ()))
    return hashlib.sha256(content.encode()).hexdigest()


def cache_key(claim: Claim, bound: Bound, encoding: str, sympy: bool) -> str:
    """The claim's content, its bound, the encoding version, whether SymPy's second opinion ran (a run that asks
    for it is not answered by one that skipped it) and the checker's own source (`checker_digest`):
    a verdict is reused only by the very checker that reached it. An encoding version alone was not enough: a
    change that lifts verdicts to all sizes (or fixes a soundness bug) without a bump would be answered by
    verdicts of the old code."""
    text = f"{claim_hash(claim)}|{bound.ranges!r}|{encoding}|sympy={sympy}|{checker_digest()}"
    return hashlib.sha256(text.encode()).hexdigest()


_DIGEST: str | None = None


def checker_digest() -> str:
    """sha256 of every source and model file of the `verify` package (computed once per process)."""
    global _DIGEST
    if _DIGEST is None:
        root = Path(__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".egg") and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
        _DIGEST = digest.hexdigest()
    return _DIGEST


KEY_ENV = "VERIFY_CACHE_KEY"
_SHORT_KEY_SAID = False


def key_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "verify" / "cache-key"


def secret_key() -> bytes | None:
    """The key that authenticates cache entries (see the module docstring); None when none can be had."""
    given = os.environ.get(KEY_ENV)
    if given:
        if len(given) >= 32:
            return given.encode()
        global _SHORT_KEY_SAID
        if not _SHORT_KEY_SAID:   # as short a key as a key file may not have: no key, and the cache is off
            _SHORT_KEY_SAID = True
            print(f"warning: {KEY_ENV} is shorter than 32 characters, too short to authenticate cache entries: "
                  "the result cache is off", file=sys.stderr)
        return None
    path = key_file()
    try:
        if not path.exists():        # written whole under a temporary name, then linked: never read half-written
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")   # mode 0600
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
                os.link(tmp, path)
            except FileExistsError:  # another process made it just now: use theirs
                pass
            finally:
                os.unlink(tmp)
        key = path.read_text().strip()
    except OSError:
        return None
    return key.encode() if len(key) >= 32 else None


def _mac(secret: bytes, key: str, payload: str) -> str:
    return hmac.new(secret, f"verify-cache-entry-v1\n{key}\n{payload}".encode(), hashlib.sha256).hexdigest()


class Cache:
    def __init__(self, directory: str | Path = ".verify-cache", mode: str = "rw"):
        if mode not in tuple(CacheMode):
            raise ValueError(mode)
        self.directory = Path(directory)
        self.secret = (secret_key() if mode != CacheMode.OFF else None) or b""
        self.mode = CacheMode(mode) if self.secret else CacheMode.OFF
        self.rejected: str | None = None    # why the last entry read was not trusted

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Result | None:
        """The authenticated entry for `key`, or None (absent, or rejected: then `self.rejected` says why)."""
        self.rejected = None
        if self.mode is CacheMode.OFF:
            return None
        path = self._path(key)
        try:
            text = path.read_text()
        except OSError:
            return None
        try:
            entry = json.loads(text)
            payload, mac = entry["result"], entry["mac"]
            if not isinstance(payload, str) or not isinstance(mac, str):
                raise TypeError("malformed entry")
        except (ValueError, KeyError, TypeError):
            self.rejected = f"cache entry {key[:12]} is not an authenticated entry: ignored"
            return None
        if not hmac.compare_digest(mac, _mac(self.secret, key, payload)):
            self.rejected = (f"cache entry {key[:12]} failed authentication (edited, copied from another entry, or "
                             f"written with another key: another machine or runner): ignored")
            return None
        try:
            return Result.from_json(json.loads(payload))
        except (ValueError, KeyError, TypeError):
            self.rejected = f"cache entry {key[:12]} could not be read: ignored"
            return None

    def put(self, key: str, result: Result) -> None:
        if self.mode is not CacheMode.RW or result.verdict not in CACHEABLE:
            return
        payload = json.dumps(result.to_json())
        try:
            write_atomically(self._path(key), json.dumps({"mac": _mac(self.secret, key, payload),
                                                          "result": payload}))
        except OSError:
            pass  # a read-only checkout still checks; it only loses the cache


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
