"""Opaque page tokens for listing one user's memories out of an unfiltered index scan."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ListCursor:
    """Where a memory listing stopped: a ``ListVectors`` page token and the position to resume at in it.

    The position is the key of the first vector not yet examined (with its index as a fallback if
    that vector was deleted meanwhile), so a listing can stop and resume inside a ``ListVectors``
    page and every page of a user's memories but the last holds exactly ``page_size``.
    """

    token: str | None
    resume_key: str | None = None
    resume_index: int = 0

    def encode(self) -> str:
        raw = json.dumps({"t": self.token, "k": self.resume_key, "n": self.resume_index}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ListCursor:
        try:
            padded = text + "=" * (-len(text) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            token, key, count = payload["t"], payload["k"], payload["n"]
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
            raise ValueError("invalid next_token: pass the next_token of a previous page unchanged") from None
        if not (token is None or isinstance(token, str)) or not (key is None or isinstance(key, str)):
            raise ValueError("invalid next_token: pass the next_token of a previous page unchanged")
        if not isinstance(count, int) or count < 0:
            raise ValueError("invalid next_token: pass the next_token of a previous page unchanged")
        return cls(token, key, count)

    def resume_position(self, keys: Sequence[str]) -> int:
        if self.resume_key is not None and self.resume_key in keys:
            return keys.index(self.resume_key)
        return min(self.resume_index, len(keys))
