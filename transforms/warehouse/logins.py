"""The PostgreSQL warehouse's roles and logins (``hei warehouse-roles``, ``hei grant-login``).

What each role may do is DDL (``sql/002_roles.postgres.sql`` and the ``9*.postgres.sql``
grants): ``hei_loader`` is what the pipeline writes as, ``hei_engineer`` reads everything and
``hei_analyst`` reads the ``mart`` views. An administrator sets them up on a warehouse, and
gives each person or component a login that is a member of one of them and of nothing more.
Passwords are hashed (SCRAM-SHA-256) on this side, so the plain text never reaches the server
or its logs.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection, Engine

from transforms.warehouse.ddl import LOADER_ROLE, administers, apply_ddl
from transforms.warehouse.engine import make_engine

ROLES = {"loader": LOADER_ROLE, "engineer": "hei_engineer", "analyst": "hei_analyst"}
"""The kinds of login, and the role each kind is a member of."""
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


class LoginError(Exception):
    """A login that cannot or must not be made; the message says why and what to do."""


def new_password() -> str:
    """A random password of 32 URL-safe characters (24 random bytes)."""
    return secrets.token_urlsafe(24)


def set_up_roles(url: str) -> Engine:
    """Make the roles, the schemas, the tables (owned by the loader), the mart views and the
    grants, or bring them up to date: all the DDL, applied again whatever was recorded, so a
    role or grant dropped by hand comes back. Only an administrator may."""
    if sa.make_url(url).get_backend_name() != "postgresql":
        raise LoginError(
            "the warehouse is not PostgreSQL. DuckDB has no roles or logins: they need the "
            "PostgreSQL warehouse (--warehouse or HEI_WAREHOUSE_URL)"
        )
    engine = make_engine(url)
    with engine.connect() as conn:
        if not administers(conn):
            raise LoginError(
                "this user may not create schemas in the warehouse's database: the roles are "
                "set up by an administrator (a superuser, or the database's owner with "
                "CREATEROLE), not by the loader or an engineer"
            )
    apply_ddl(engine, force=True)
    return engine


def grant_login(url: str, kind: str, name: str, password: str) -> Literal["created", "updated"]:
    """Create the login ``name`` in the role of ``kind``, or set the password of that login.

    An existing role is only updated if it is already a login of that kind and nothing more,
    so the command can never hand a role's rights (or a new password) to the administrator,
    a role with administrative attributes or other memberships, or a login of another kind.
    """
    role = ROLES[kind]
    if not NAME.fullmatch(name) or name.startswith("pg_") or name in ROLES.values():
        raise LoginError(
            f"{name!r} cannot be a login name: use lower-case letters, digits and _, at most 63, "
            f"not starting with a digit or pg_ (and not {', '.join(ROLES.values())}, the roles)"
        )
    if len(password) < MIN_PASSWORD:
        raise LoginError(f"the password must have at least {MIN_PASSWORD} characters")
    engine = set_up_roles(url)  # the role and its grants, even if dropped by hand
    with engine.begin() as conn:
        existing = conn.execute(sa.text(ROLE), {"name": name}).mappings().one_or_none()
        if existing is not None:
            _only_a_member_of(name, role, existing)
        _set_login(conn, name, password, role, create=existing is None)
    return "created" if existing is None else "updated"


def _only_a_member_of(name: str, role: str, found: sa.RowMapping) -> None:
    if found["is_us"] or found["privileged"] or list(found["member_of"]) != [role]:
        raise LoginError(
            f"a role {name} exists and is not only a member of {role} (it is the user running "
            "this, has administrative attributes, or belongs to other roles): choose another "
            "name"
        )


def _set_login(conn: Connection, name: str, password: str, role: str, *, create: bool) -> None:
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
            role=sql.Identifier(role),
        )
    )
