"""API keys carry a purpose: ``events`` (a shop's /v1 API, every key made before) or ``admin`` (the /admin
JSON endpoints, for scripts: ``posventa admin-user key``). A key opens one door only.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=False, server_default="events"))
        batch.create_check_constraint(op.f("ck_api_keys_purpose"), "purpose IN ('events', 'admin')")


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("ck_api_keys_purpose"), type_="check")
        batch.drop_column("purpose")
