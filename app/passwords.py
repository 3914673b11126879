"""Password hashing for admin users: scrypt from the standard library (:func:`hashlib.scrypt`).

Why scrypt and not a new dependency: it is memory-hard, one of OWASP's recommended password hashes, and
ships with Python (OpenSSL), so the admin area adds nothing to the lock file. Parameters: N=2^15, r=8,
p=1 (32 MiB per hash, about 0.1–0.3 s on this project's 2-core machine), twice the work of Django's
scrypt hasher (N=2^14); a sign-in is also rate-limited per address and per user name. They are written
into every hash, so they can be raised later: :func:`needs_rehash` says when a stored hash was made with
other ones and the next successful sign-in re-hashes it.

A hash reads ``scrypt$ln=15,r=8,p=1$<salt>$<key>`` (salt and key in unpadded base64url).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
LOG2_N, R, P = 15, 8, 1
KEY_BYTES, SALT_BYTES = 32, 16
#: Long enough to make guessing pointless, short enough to hash quickly (a form can post megabytes).
MIN_LENGTH, MAX_LENGTH = 12, 1024


class PasswordError(ValueError):
    """A new password that the policy refuses (too short or too long)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=256 * n * r + (1 << 20)
    )


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password must have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """A new salted hash of ``password`` (which must pass :func:`check_policy`)."""
    check_policy(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, LOG2_N, R, P)
    return f"{SCHEME}$ln={LOG2_N},r={R},p={P}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    try:
        scheme, params, salt, key = stored.split("$")
        values = dict(part.split("=", 1) for part in params.split(","))
        log2_n, r, p = int(values["ln"]), int(values["r"]), int(values["p"])
        if scheme != SCHEME or not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            return None
        return log2_n, r, p, _unb64(salt), _unb64(key)
    except (ValueError, KeyError):
        return None


def verify_password(password: str, stored: str | None) -> bool:
    """Does ``password`` match ``stored``? Without a stored hash (an unknown user) a dummy hash is still
    computed, so an answer takes as long for a name that does not exist as for a wrong password."""
    found = _parse(stored) if stored else None
    if found is None or len(password) > MAX_LENGTH:
        _scrypt(password[:MAX_LENGTH], b"\0" * SALT_BYTES, LOG2_N, R, P)
        return False
    log2_n, r, p, salt, key = found
    return hmac.compare_digest(_scrypt(password, salt, log2_n, r, p), key)


def needs_rehash(stored: str) -> bool:
    found = _parse(stored)
    return found is None or found[:3] != (LOG2_N, R, P)


def fingerprint(stored: str) -> str:
    """A short digest of a stored hash, put in session cookies: a new password (a new hash) or a removed
    user ends the sessions signed before."""
    return hashlib.sha256(stored.encode("ascii", "replace")).hexdigest()[:16]
