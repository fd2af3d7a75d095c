"""API tokens: shown once at creation, stored only as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import Column, DateTime, String, Table, insert, select, update

from domain.provenance import Role
from infrastructure.persistence import Datastore

TOKEN_PREFIX = "tsu_"  # noqa: S105 - a prefix that makes leaked tokens greppable


@dataclass(frozen=True)
class Principal:
    """Who a valid token says the caller is."""

    token_id: UUID
    name: str
    role: Role


@dataclass(frozen=True)
class TokenRecord:
    id: UUID
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a plain fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


CACHE_SECONDS = 2.0
"""How long a process trusts a token it has checked: a revocation made by another process
(``tsunagari token revoke``) takes effect within this time; in the same process, at once."""


class TokenStore:
    def __init__(self, datastore: Datastore) -> None:
        self.datastore = datastore
        self._checked: dict[str, tuple[float, Principal]] = {}
        self.tokens = Table(
            "tsunagari_tokens",
            datastore.metadata,
            Column("id", String(36), primary_key=True),
            Column("name", String(100), nullable=False),
            Column("role", String(20), nullable=False),
            Column("token_hash", String(64), nullable=False, unique=True),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("revoked_at", DateTime(timezone=True)),
        )

    def create(self, *, name: str, role: Role) -> tuple[TokenRecord, str]:
        """A new token; the secret is returned here and never again."""
        if not name.strip() or len(name) > 100:
            raise ValueError("a token needs a name of 1 to 100 characters")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord(uuid4(), name.strip(), role, datetime.now(UTC), None)
        with self.datastore.transaction(commit=True) as session:
            session.execute(
                insert(self.tokens).values(
                    id=str(record.id),
                    name=record.name,
                    role=role.value,
                    token_hash=hash_token(secret),
                    created_at=record.created_at,
                )
            )
        return record, secret

    def list(self) -> list[TokenRecord]:
        query = select(self.tokens).order_by(self.tokens.c.created_at)
        with self.datastore.transaction(commit=False) as session:
            rows = session.execute(query).all()
        return [
            TokenRecord(
                UUID(row.id),
                row.name,
                Role(row.role),
                _utc(row.created_at) or row.created_at,
                _utc(row.revoked_at),
            )
            for row in rows
        ]

    def revoke(self, token_id: UUID) -> bool:
        """Revoke a token; False when no active token has that id."""
        with self.datastore.transaction(commit=True) as session:
            result = session.execute(
                update(self.tokens)
                .where(self.tokens.c.id == str(token_id), self.tokens.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            changed: int = result.rowcount
        self._checked.clear()
        return changed == 1

    def recently_checked(self, secret: str) -> Principal | None:
        """The principal of a token found active in the last CACHE_SECONDS, without I/O."""
        if len(secret) > 200:
            return None
        checked = self._checked.get(hash_token(secret))
        if checked is not None and time.monotonic() - checked[0] < CACHE_SECONDS:
            return checked[1]
        return None

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of an active token, or None."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        recent = self.recently_checked(secret)
        if recent is not None:
            return recent
        token_hash = hash_token(secret)
        query = select(self.tokens.c.id, self.tokens.c.name, self.tokens.c.role).where(
            self.tokens.c.token_hash == token_hash, self.tokens.c.revoked_at.is_(None)
        )
        with self.datastore.transaction(commit=False) as session:
            row = session.execute(query).first()
        if row is None:
            return None
        principal = Principal(UUID(row.id), row.name, Role(row.role))
        self._checked[token_hash] = (time.monotonic(), principal)
        return principal
