from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.core.database import Base, utcnow


class NetworkAssociation(Base):
    """This Node's association with a Network (docs/network.md).

    ``push_credential`` is the secret the Node presents to push its catalogue (the Network keeps its hash);
    ``accept_hash`` is the SHA-256 of the secret the Network presents to read this Node's statistics (made here at
    join; the Node never keeps it in clear). ``state`` is what the Network last said: pending, approved, denied,
    expired; ended when either side ended it. ``network_ca_pem`` pins the roots the Network's certificate must chain
    to (every call to it verifies against them only; null: the public CAs); ``node_ca_pem`` is the root of this
    Node's own certificate that was sent to the Network at join (docs/network.md, "Private certificates")."""

    __tablename__ = "network_associations"

    id: Mapped[int] = mapped_column(primary_key=True)
    network_url: Mapped[str] = mapped_column(String(255), index=True)
    network_name: Mapped[str] = mapped_column(String(64), default="")
    remote_id: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), index=True)
    push_credential: Mapped[str | None] = mapped_column(String(128))
    accept_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_push_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(500), default="")
    ended_at: Mapped[datetime | None]
    network_ca_pem: Mapped[str | None] = mapped_column(Text)
    node_ca_pem: Mapped[str | None] = mapped_column(Text)
