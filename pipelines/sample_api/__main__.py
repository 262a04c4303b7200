"""Serve the sample API on a loopback port: ``python -m pipelines.sample_api --port 8765``.

Every knob of SampleApiConfig is a flag (``--change-rate 0.2 --rate-limit 200 ...``).
"""

from __future__ import annotations

import argparse
from dataclasses import fields

import uvicorn

from pipelines.sample_api.app import create_app
from pipelines.sample_api.config import SampleApiConfig


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, SampleApiConfig]:
    parser = argparse.ArgumentParser(prog="python -m pipelines.sample_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    defaults = SampleApiConfig()
    for f in fields(SampleApiConfig):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes", "on"), default=default)
        elif default is None:
            parser.add_argument(flag, type=float if f.name.endswith("_ttl") else str, default=None)
        else:
            parser.add_argument(flag, type=type(default), default=default)
    args = parser.parse_args(argv)
    config = SampleApiConfig(**{f.name: getattr(args, f.name) for f in fields(SampleApiConfig)})
    return args, config


def main(argv: list[str] | None = None) -> None:
    args, config = parse_args(argv)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
