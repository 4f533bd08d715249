"""Logins for partner analysts on the PostgreSQL warehouse (``hei grant-analyst``).

What analysts may read is DDL: the role ``hei_analyst`` (``sql/900_analyst_role.postgres.sql``)
reads the ``mart`` views and nothing else. This module makes logins that are members of that
role and of nothing more. Passwords are hashed (SCRAM-SHA-256) on this side, so the plain
text never reaches the server or its logs.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection

from transforms.warehouse.ddl import apply_ddl
from transforms.warehouse.engine import make_engine

ANALYST_ROLE = "hei_analyst"
NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # an unquoted PostgreSQL identifier
MIN_PASSWORD = 16

ROLE = """
select r.rolname = current_user as is_us,
       r.rolsuper or r.rolcreaterole or r.rolcreatedb or r.rolreplication or r.rolbypassrls
           as privileged,
       array(select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid
             where m.member = r.oid order by g.rolname) as member_of
from pg_roles r
where r.rolname = :name
"""


class AnalystError(Exception):
    """A login that cannot or must not be made; the message says why and what to do."""


def new_password() -> str:
    """A random password of 32 URL-safe characters (24 random bytes)."""
    return secrets.token_urlsafe(24)


def grant_analyst(url: str, name: str, password: str) -> Literal["created", "updated"]:
    """Create the login ``name`` in ``hei_analyst``, or set the password of that analyst.

    An existing role is only updated if it is already an analyst and nothing more, so the
    command can never hand the analysts' rights (or a new password) to the pipeline's own
    user, an administrator or a role with other memberships.
    """
    if sa.make_url(url).get_backend_name() != "postgresql":
        raise AnalystError(
            "the warehouse is not PostgreSQL. DuckDB has no roles or logins: partner "
            "analysts need the PostgreSQL warehouse (--warehouse or HEI_WAREHOUSE_URL)"
        )
    if not NAME.fullmatch(name) or name.startswith("pg_") or name == ANALYST_ROLE:
        raise AnalystError(
            f"{name!r} cannot be a login name: use lower-case letters, digits and _, at most 63, "
            f"not starting with a digit or pg_ (and not {ANALYST_ROLE}, the role itself)"
        )
    if len(password) < MIN_PASSWORD:
        raise AnalystError(f"the password must have at least {MIN_PASSWORD} characters")
    engine = make_engine(url)
    apply_ddl(engine, force=True)  # the role and its grants, even if dropped by hand
    with engine.begin() as conn:
        existing = conn.execute(sa.text(ROLE), {"name": name}).mappings().one_or_none()
        if existing is not None:
            _only_an_analyst(name, existing)
        _set_login(conn, name, password, create=existing is None)
    return "created" if existing is None else "updated"


def _only_an_analyst(name: str, role: sa.RowMapping) -> None:
    if role["is_us"] or role["privileged"] or list(role["member_of"]) != [ANALYST_ROLE]:
        raise AnalystError(
            f"a role {name} exists and is not a partner analyst (it is the pipeline's own "
            "user, has administrative attributes, or belongs to other roles): choose another "
            "name"
        )


def _set_login(conn: Connection, name: str, password: str, *, create: bool) -> None:
    raw = conn.connection.driver_connection
    verifier = raw.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
    statement = (
        "create role {name} login password {verifier} in role {role}"
        if create
        else "alter role {name} login password {verifier}"
    )
    raw.execute(
        sql.SQL(statement).format(
            name=sql.Identifier(name),
            verifier=sql.Literal(verifier.decode()),
            role=sql.Identifier(ANALYST_ROLE),
        )
    )
