"""Fernet keys from `FERNET_KEY`: one or more comma-separated keys, the first encrypts, all decrypt."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_VARIABLE = "FERNET_KEY"
GENERATE_HINT = (
    "generate one with `mail-pipeline key generate` and put it in FERNET_KEY (see .env.example)"
)


class KeyConfigError(Exception):
    """Raised for a missing or malformed FERNET_KEY. Never carries key material."""


class DecryptError(Exception):
    """A stored token that none of the configured keys can decrypt."""


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


@dataclass(frozen=True)
class Keyring:
    """The keys of FERNET_KEY as one MultiFernet, and how many there are (MultiFernet keeps no
    public count: cryptography 51 dropped the private list older code read)."""

    fernet: MultiFernet
    key_count: int

    def encrypt(self, data: bytes) -> bytes:
        return self.fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        return self.fernet.decrypt(token)

    def rotate(self, token: bytes) -> bytes:
        return self.fernet.rotate(token)


def load_cipher(value: str | None = None) -> Keyring:
    """Build the MultiFernet from FERNET_KEY, failing with one clear, secret-free message."""
    raw = os.environ.get(KEY_VARIABLE, "") if value is None else value
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if not keys:
        raise KeyConfigError(f"{KEY_VARIABLE} is not set: {GENERATE_HINT}")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            # `from None`: the ValueError's context would otherwise drag the key into tracebacks.
            raise KeyConfigError(
                f"{KEY_VARIABLE} key #{position} of {len(keys)} is not a valid Fernet key "
                f"(32 url-safe base64-encoded bytes): {GENERATE_HINT}"
            ) from None
    return Keyring(MultiFernet(fernets), len(fernets))


def encrypt(cipher: Keyring, secret: str) -> str:
    return cipher.encrypt(secret.encode("utf-8")).decode("ascii")


def decrypt(cipher: Keyring, token: str, *, owner: str, what: str = "password") -> str:
    try:
        return cipher.decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise DecryptError(
            f"the stored {what} of account {owner!r} cannot be decrypted with any key in "
            f"{KEY_VARIABLE}: add the key it was encrypted with (comma-separated, after the new one)"
        ) from None


def rotate(cipher: Keyring, token: str, *, owner: str, what: str = "password") -> str:
    try:
        return cipher.rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise DecryptError(
            f"the stored {what} of account {owner!r} cannot be decrypted with any key in "
            f"{KEY_VARIABLE}; rotation stopped before writing anything"
        ) from None
