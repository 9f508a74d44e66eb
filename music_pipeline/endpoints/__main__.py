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

    from .app import MIN_TOKEN, Settings, build_app

    settings = Settings.from_env(args.webserver)
    if len(settings.share_token) < MIN_TOKEN:
        print(f"the share endpoint needs MUSIC_SHARE_TOKEN of {MIN_TOKEN} characters or more "
              "(e.g. `openssl rand -hex 24`); not started", file=sys.stderr)
        return 2
    # warnings only: no access log, so no path, header or body is ever written
    uvicorn.run(build_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
