"""Alembic environment: runs migrations on the connection handed over by optix_server.infra.db."""

from __future__ import annotations

from alembic import context

from optix_server.infra.db import Base
from optix_server.models import import_all_models

import_all_models()
target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `optix migrate`, which provides the connection")
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
