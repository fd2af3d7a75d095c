"""Per-participant keys (``tsunagari_participant_keys``), apart from the log: crypto-shredding.

Each participant's personal data is sealed with the library's AES-GCM cipher
(``eventsourcing.cipher.AESCipher``) under a 256-bit key of its own. Erasure deletes the key row:
the envelopes in the log stay byte for byte (the log is append-only, and its seal unchanged) but
can never be opened again. On SQLite the delete runs with ``PRAGMA secure_delete`` so the freed
bytes are zeroed in the file rather than left on a free page, and a checkpoint afterwards
removes the page's earlier version from the write-ahead log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from base64 import b64decode, b64encode
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.cipher import AESCipher
from eventsourcing.utils import Environment
from sqlalchemy import Column, DateTime, String, Table, delete, insert, select, text

if TYPE_CHECKING:
    # Only a type here: infrastructure.persistence builds the key table when it opens the store.
    from infrastructure.persistence import Datastore

KEY_BYTES = 32
ENVELOPE_PREFIX = "aesgcm1:"
_FINGERPRINT_KEY_LABEL = b"tsunagari idempotency fingerprint v1"


class ParticipantSealer:
    """AES-GCM with one participant's key; envelopes are ``aesgcm1:<base64>``."""

    def __init__(self, key: str) -> None:
        self._cipher = AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))
        # A key of its own for hashing, derived from the participant's: one key, one use.
        self._hash_key = hmac.digest(b64decode(key), _FINGERPRINT_KEY_LABEL, hashlib.sha256)

    def seal(self, content: dict[str, Any]) -> str:
        plaintext = json.dumps(content, ensure_ascii=False, sort_keys=True).encode()
        return ENVELOPE_PREFIX + b64encode(self._cipher.encrypt(plaintext)).decode("ascii")

    def keyed(self, text: str) -> str:
        return hmac.new(self._hash_key, text.encode(), hashlib.sha256).hexdigest()

    def open(self, envelope: str) -> dict[str, Any]:
        if not envelope.startswith(ENVELOPE_PREFIX):
            raise ValueError("not an envelope sealed by a participant key")
        plaintext = self._cipher.decrypt(b64decode(envelope[len(ENVELOPE_PREFIX) :]))
        content: dict[str, Any] = json.loads(plaintext)
        return content


class KeyTable:
    """The key table, written through the same datastore (and transaction) as the events."""

    def __init__(self, datastore: Datastore) -> None:
        self.datastore = datastore
        self.keys = Table(
            "tsunagari_participant_keys",
            datastore.metadata,
            Column("participant_id", String(36), primary_key=True),
            Column("key", String(64), nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
        )

    def create(self, participant_id: UUID) -> ParticipantSealer:
        key = AESCipher.create_key(KEY_BYTES)
        with self.datastore.transaction(commit=True) as session:
            session.execute(
                insert(self.keys).values(
                    participant_id=str(participant_id), key=key, created_at=datetime.now(UTC)
                )
            )
        return ParticipantSealer(key)

    def find(self, participant_id: UUID) -> ParticipantSealer | None:
        query = select(self.keys.c.key).where(self.keys.c.participant_id == str(participant_id))
        with self.datastore.transaction(commit=False) as session:
            key = session.execute(query).scalar()
        return ParticipantSealer(key) if key is not None else None

    def destroy(self, participant_id: UUID) -> None:
        with self.datastore.transaction(commit=True) as session:
            if self.datastore.engine.dialect.name == "sqlite":
                # Zero the deleted row's bytes in the file instead of leaving them on a free
                # page. A connection setting: harmless on the pooled connection afterwards.
                session.execute(text("PRAGMA secure_delete = ON"))
            session.execute(
                delete(self.keys).where(self.keys.c.participant_id == str(participant_id))
            )

    def purge(self) -> None:
        if self.datastore.engine.dialect.name != "sqlite":
            # PostgreSQL: the deleted row is gone from every query and dump at once; its dead
            # tuple leaves the data files at the next (auto)vacuum.
            return
        # WAL mode keeps the page as it was before the delete in the -wal file until a
        # checkpoint: copy every frame into the file (whose page is now zeroed) and truncate
        # the WAL. Readers holding an older snapshot can keep it from completing; the next
        # erasure or the automatic checkpoint finishes the job.
        with self.datastore.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
