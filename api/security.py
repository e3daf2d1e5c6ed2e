"""Credentials: argon2 password hashes, officer JWTs, device API keys and the login rate limit."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.db import utcnow

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "phatnguoi"

# argon2id with the library's defaults (RFC 9106 "low memory": t=3, m=64 MiB, p=4), ~150 ms here.
_hasher = PasswordHasher()
# A hash verified when the username does not exist, so that a login's duration does not tell whether
# it does. Made on first use (not at import: hashing costs ~150 ms).
_dummy_lock = threading.Lock()
_dummy: list[str] = []


def hash_password(password: str) -> str:
    """argon2id hash (with its parameters and salt) of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches the stored hash (False for a malformed hash too)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def burn_password_check(password: str) -> None:
    """Spend the time of one password check (for unknown usernames)."""
    with _dummy_lock:
        if not _dummy:
            _dummy.append(_hasher.hash(secrets.token_urlsafe(16)))
    verify_password(_dummy[0], password)


def create_access_token(
    *, user_id: int, username: str, role: str, secret: str, minutes: int
) -> tuple[str, int]:
    """A signed HS256 JWT for an officer; returns (token, lifetime in seconds).

    Only identity goes in the token: role and district are read from the database on every request,
    so deactivating a user or moving an officer takes effect at once.
    """
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "name": username,
        "role": role,
        "iss": JWT_ISSUER,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM), minutes * 60


def decode_access_token(token: str, secret: str) -> int | None:
    """The user id in a valid, unexpired token of ours; None for anything else."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub")
    if claims.get("typ") != "access" or not isinstance(sub, str) or not sub.isdigit() or len(sub) > 18:
        return None
    return int(sub)


DEVICE_KEY_PREFIX = "pnd_"
_DEVICE_KEY = re.compile(r"^pnd_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """A freshly made device API key: `key` is shown once; `key_id` and `key_hash` are stored."""

    key: str
    key_id: str
    key_hash: str


def new_device_key() -> DeviceKey:
    """`pnd_<16 hex key id>_<43 chars = 256 random bits>`."""
    key_id = secrets.token_hex(8)
    key = f"{DEVICE_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return DeviceKey(key, key_id, device_key_hash(key))


def device_key_hash(key: str) -> str:
    """SHA-256 (hex) of a whole device key (see `api.models.Device` for why not argon2)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_device_key(key: str) -> str | None:
    """The key id of a well-formed device key, else None (nothing malformed reaches the database)."""
    m = _DEVICE_KEY.fullmatch(key)
    return m.group(1) if m else None


def device_key_matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with the stored hash."""
    return hmac.compare_digest(device_key_hash(key), stored_hash)


class LoginRefusal(NamedTuple):
    """Why an attempt may not be made now: the seconds until one may, and whether it is the client
    address's cap (`max_failures_per_ip`) rather than the username's that is reached."""

    wait_s: float
    per_address: bool


class LoginLimiter:
    """Failed attempts per (username, client IP) in a sliding window, and optionally per client IP
    whatever the username, in this process's memory.

    The per-address cap is what stops password spraying (one guess at each of many usernames from one
    address), which the per-pair limit never sees. It counts failures only, so officers behind one NAT
    address do not use it up by logging in; their mistakes do add up, hence a cap well above the
    per-pair one.

    In-process is enough for one server process; with several workers each counts separately, so
    the effective limit is workers × `max_failures` (a shared store would fix that). At most
    `max_keys` keys (pairs and addresses) are remembered (oldest forgotten first) so a flood cannot
    exhaust memory.
    """

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        max_keys: int = 100_000,
        max_failures_per_ip: int | None = None,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self.max_failures_per_ip = max_failures_per_ip
        # (username, ip) for a pair; (None, ip) for an address's total.
        self._failures: OrderedDict[tuple[str | None, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str | None, str], now: float) -> deque[float] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def _count(self, key: tuple[str | None, str], q: deque[float] | None, now: float) -> None:
        q = q if q is not None else deque()
        q.append(now)
        self._failures[key] = q
        self._failures.move_to_end(key)

    def _wait(self, q: deque[float] | None, cap: int | None, now: float) -> float:
        """Seconds until `q` is under `cap` again; 0 when it is."""
        if q is None or cap is None or len(q) < cap:
            return 0.0
        return max(q[-cap] + self.window_s - now, 0.001)

    def admit(self, username: str, ip: str) -> LoginRefusal | None:
        """Count an attempt before it is checked, and say whether it may be made: None when it may (it
        counts as a failure until `succeeded`), else why not and for how long (then nothing is counted).

        Counting before the (slow, ~0.15 s) password check, under one lock, is what keeps a burst of
        parallel guesses to the caps: checked first and counted after, every request already in
        flight would pass.
        """
        pair = (username.lower(), ip)
        address = (None, ip)
        now = time.monotonic()
        with self._lock:
            pair_q = self._recent(pair, now)
            address_q = self._recent(address, now) if self.max_failures_per_ip is not None else None
            pair_wait = self._wait(pair_q, self.max_failures, now)
            address_wait = self._wait(address_q, self.max_failures_per_ip, now)
            if pair_wait > 0 or address_wait > 0:
                return LoginRefusal(max(pair_wait, address_wait), per_address=address_wait > 0)
            self._count(pair, pair_q, now)
            if self.max_failures_per_ip is not None:
                self._count(address, address_q, now)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
            return None

    def acquire(self, username: str, ip: str) -> float:
        """`admit` as a number: 0 when the attempt may be made (and is counted), else the seconds until
        one may."""
        refusal = self.admit(username, ip)
        return refusal.wait_s if refusal is not None else 0.0

    def succeeded(self, username: str, ip: str) -> None:
        """Forget the pair's failures, and take this attempt off the address's count (the address keeps
        the pair's earlier failures: a success must not reset a sprayer's count)."""
        with self._lock:
            pair_q = self._failures.pop((username.lower(), ip), None)
            address_q = self._failures.get((None, ip))
            if pair_q and address_q:
                # This attempt was counted at the same instant under both keys (the newest of the pair).
                with contextlib.suppress(ValueError):
                    address_q.remove(pair_q[-1])
                if not address_q:
                    del self._failures[(None, ip)]
