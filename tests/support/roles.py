"""Logins in the warehouse's roles on a test database, so tests run the pipeline as it runs
in production: as the loader, not as the server's superuser.

The roles themselves (``hei_loader``, ``hei_engineer``, ``hei_analyst``) have their production
names: roles belong to the whole server, the set-up creates a missing one and never drops one,
so tests on other databases can share them safely (and a role holds nothing once the test's
database is dropped). The logins are each test database's own, named after it
(``<database>_loader``), and ``drop_logins`` removes them.
"""

from __future__ import annotations

import sqlalchemy as sa

from transforms.warehouse import logins

PASSWORD = "a-test-password-not-secret"


def login_name(admin_url: str, kind: str) -> str:
    return f"{sa.make_url(admin_url).database}_{kind}"


def login_url(admin_url: str, kind: str) -> str:
    """Set up the roles on ``admin_url``'s database (as its administrator, e.g. the test
    server's superuser) and return the URL of a login of ``kind`` there."""
    name = login_name(admin_url, kind)
    logins.grant_login(admin_url, kind, name, PASSWORD)
    url = sa.make_url(admin_url).set(username=name, password=PASSWORD)
    return url.render_as_string(hide_password=False)


def loader_url(admin_url: str) -> str:
    """The URL the pipeline should use on ``admin_url``'s database: a loader login."""
    return login_url(admin_url, "loader")


def drop_logins(admin_url: str) -> None:
    """Drop the logins ``login_url`` made for ``admin_url``'s database, which may have been
    dropped already (this connects to the server's ``postgres`` database)."""
    maintenance = sa.make_url(admin_url).set(database="postgres")
    server = sa.create_engine(maintenance, poolclass=sa.pool.NullPool)
    with server.begin() as conn:
        for kind in logins.ROLES:
            conn.execute(sa.text(f'drop role if exists "{login_name(admin_url, kind)}"'))
