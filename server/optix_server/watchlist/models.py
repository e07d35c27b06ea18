"""Tables of the watchlist slice: one row per list, its ordered symbols kept with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from optix_server.infra.db import Base, UtcDateTime


class WatchlistRow(Base):
    """A watchlist. Its items are one JSON array ([symbol, add time] pairs, in order), so every
    change is one conditional UPDATE of one row (revision checked in the same statement)."""

    __tablename__ = "watchlist_lists"
    __table_args__ = (
        # Exactly one default list per user, decided by the database even for racing first calls.
        Index(
            "watchlist_one_default_per_user",
            "user_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        # The order ListWatchlists pages in: default first, then by creation, then id.
        Index("watchlist_list_order", "user_id", "is_default", "create_time", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(64))
    is_default: Mapped[bool] = mapped_column(Boolean)
    items: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())
