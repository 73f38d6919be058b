"""The server's analysed photos: a bounded, thread-safe LRU of Avatars plus the built-in one.

A photo is analysed once (FaceRig, ~100-300 ms) and then drives any number of renders and live
sessions; keeping at most `capacity` of them bounds memory (one 512² rig holds ~15 MB of plates
and maps). The built-in portrait's avatar, built at start-up, is pinned under DEFAULT_ID and never
evicted, so the page's "use the built-in portrait" is instant.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from facetalk.api import Avatar

DEFAULT_ID = "default"


@dataclass(frozen=True)
class StoredAvatar:
    id: str
    avatar: Avatar
    preview_jpeg: bytes  # the analysed crop, what the page shows before any frame arrives
    notes: tuple[str, ...]  # what the user should know about how the photo was read


class AvatarStore:
    """Avatars by id: the pinned default plus the `capacity` most recently used uploads."""

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(f"the avatar cache needs room for at least one avatar, got {capacity}")
        self.capacity = capacity
        self._default: StoredAvatar | None = None
        self._lru: OrderedDict[str, StoredAvatar] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru) + (self._default is not None)

    def set_default(self, avatar: Avatar, preview_jpeg: bytes, notes: tuple[str, ...] = ()) -> StoredAvatar:
        with self._lock:
            self._default = StoredAvatar(DEFAULT_ID, avatar, preview_jpeg, notes)
            return self._default

    def add(self, avatar: Avatar, preview_jpeg: bytes, notes: tuple[str, ...] = ()) -> StoredAvatar:
        """Keep an uploaded avatar under a new unguessable id, evicting the least recently used."""
        stored = StoredAvatar(secrets.token_urlsafe(9), avatar, preview_jpeg, notes)
        with self._lock:
            self._lru[stored.id] = stored
            while len(self._lru) > self.capacity:
                self._lru.popitem(last=False)
        return stored

    def get(self, avatar_id: str) -> StoredAvatar | None:
        """The avatar (marked as just used), or None if unknown or evicted."""
        with self._lock:
            if avatar_id == DEFAULT_ID:
                return self._default
            stored = self._lru.get(avatar_id)
            if stored is not None:
                self._lru.move_to_end(avatar_id)
            return stored
