"""`python -m music_pipeline.endpoints --host H --port P --webserver URL`: the endpoints'
server, which `music-pipeline up` starts beside the Dagster UI and stops with it."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m music_pipeline.endpoints")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--webserver", required=True, help="the Dagster webserver's URL")
    args = parser.parse_args(argv)
    import uvicorn

    from .app import Settings, build_app

    app = build_app(Settings.from_env(args.webserver))
    # uvicorn's access log shows method, path and status: never a header or a body
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
