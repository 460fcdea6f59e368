"""Alembic environment of the read model: run from services.projection.tables.prepare (and from
`alembic` itself with -x url=... for authoring a new revision)."""
from alembic import context
from sqlalchemy import create_engine

from services.projection.tables import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # the alembic command line: alembic -x url=sqlite:///x.db revision --autogenerate
        engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])
        with engine.begin() as connection:
            _migrate(connection)
        return
    _migrate(connection)


def _migrate(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
