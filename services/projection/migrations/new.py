"""Write the next read-model migration from the models: python -m services.projection.migrations.new "why".

Autogenerates against a scratch SQLite database brought to the current head, so the revision holds
exactly what the models added; check it, then commit it.
"""
from __future__ import annotations

import sys
import tempfile

from alembic import command
from alembic.config import Config

from services.projection.tables import MIGRATIONS, prepare


def main(message: str) -> None:
    scratch = f"sqlite:///{tempfile.mkdtemp()}/head.db"
    prepare(scratch)  # the schema as the migrations make it now
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.cmd_opts = type("Options", (), {"x": [f"url={scratch}"]})()
    command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "read model change")
