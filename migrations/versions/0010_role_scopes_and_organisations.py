"""roles scoped to sets of certificates, and training-evaluation organisations

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01 19:40:00.000000

A role may now be scoped to a set of certificates (role_certificate), in every province or, through its member's
province, in one; a role or a user may belong to a training-evaluation organisation (培训评价组织), whose
certificates (organisation_certificate) then limit what its members see.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.core.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'organisation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('created_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation')),
        sa.UniqueConstraint('name', name=op.f('uq_organisation_name')),
    )
    op.create_table(
        'organisation_certificate',
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('certificate_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['certificate_id'], ['certificate.id'],
                                name=op.f('fk_organisation_certificate_certificate_id_certificate')),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ondelete='CASCADE',
                                name=op.f('fk_organisation_certificate_organisation_id_organisation')),
        sa.PrimaryKeyConstraint('organisation_id', 'certificate_id', name=op.f('pk_organisation_certificate')),
    )
    op.create_table(
        'role_certificate',
        sa.Column('role_code', sa.String(length=64), nullable=False),
        sa.Column('certificate_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['certificate_id'], ['certificate.id'],
                                name=op.f('fk_role_certificate_certificate_id_certificate')),
        sa.ForeignKeyConstraint(['role_code'], ['role.code'], ondelete='CASCADE',
                                name=op.f('fk_role_certificate_role_code_role')),
        sa.PrimaryKeyConstraint('role_code', 'certificate_id', name=op.f('pk_role_certificate')),
    )
    with op.batch_alter_table('role', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organisation_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_role_organisation_id_organisation'), 'organisation',
                                    ['organisation_id'], ['id'])
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organisation_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_user_account_organisation_id_organisation'), 'organisation',
                                    ['organisation_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_user_account_organisation_id_organisation'), type_='foreignkey')
        batch_op.drop_column('organisation_id')
    with op.batch_alter_table('role', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_role_organisation_id_organisation'), type_='foreignkey')
        batch_op.drop_column('organisation_id')
    op.drop_table('role_certificate')
    op.drop_table('organisation_certificate')
    op.drop_table('organisation')
