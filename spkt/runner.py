"""`spkt run NAME`: the one way every process of the system starts."""
from __future__ import annotations

import importlib

from spkt.logs import configure, logging_config
from spkt.settings import get_settings

# Each faust worker: the module whose import registers the app's agents.
WORKER_MODULES = {
    "intake": "services.intake.agents",
    "dispatch": "services.dispatch.agents",
    "tkp": "services.tkp.agents",
    "notify": "services.notify.agents",
    "projection": "services.projection.agents",
}
PROCESSES = tuple(WORKER_MODULES) + ("api", "demo")


def serve_http(app, settings, port: int | None = None) -> None:
    """Serve an ASGI app the one way the API is served (benchmarks/api.py serves its baseline so too)."""
    import uvicorn

    uvicorn.run(app, host=settings.api_host, port=port or settings.api_port,
                log_config=logging_config("api", settings.log_level), access_log=False,
                # httptools and uvloop (C): with the pure-Python h11 parser and asyncio's loop, writing one
                # event to 500 live-feed streams took 61 ms of CPU, three quarters of it in h11 and asyncio.
                http="httptools", loop="uvloop",
                # Live-feed streams never end by themselves: without a bound, stopping waits forever.
                timeout_graceful_shutdown=5)


def run(name: str) -> None:
    settings = get_settings()
    if name == "api":
        from services.api.main import create_app

        serve_http(create_app(settings), settings)
    elif name == "demo":
        from spkt.demo import flow

        configure("demo", settings.log_level)
        flow.run(settings)
    elif name in WORKER_MODULES:
        from faust import Worker

        module = importlib.import_module(WORKER_MODULES[name])
        worker = Worker(module.app, loglevel=settings.log_level.lower(), quiet=True,
                        logging_config=logging_config(name, settings.log_level), redirect_stdouts=False)
        worker.execute_from_commandline()
    else:
        raise ValueError(f"unknown process {name!r}; one of: {', '.join(PROCESSES)}")
