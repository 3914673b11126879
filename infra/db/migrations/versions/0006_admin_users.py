"""Admin users: who may sign in to the ``/admin`` area of ``posventa serve``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

One row per marketer (``posventa admin-user add``); the password is stored as a self-describing scrypt
hash (``app.passwords``), never in clear. Types are spelled out (frozen history), as in 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def INSTANT() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.Column("password_changed_at", INSTANT(), nullable=False),
        sa.Column("last_login_at", INSTANT(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("username", name=op.f("uq_admin_users_username")),
    )


def downgrade() -> None:
    op.drop_table("admin_users")
