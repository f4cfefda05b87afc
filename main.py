"""labwall entry point: parse the command line, load and validate the config, start the wall."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from monitor.config import Config, ConfigError, format_validation_error, load_config
from monitor.service.systemd import configure_logging

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="labwall", description="Live monitoring wall for a GPU lab.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    parser.add_argument("--host", dest="bind", metavar="ADDR", help="address to bind (overrides server.bind)")
    parser.add_argument("--port", type=int, metavar="N", help="port to listen on (overrides server.port)")
    parser.add_argument(
        "--runs", action="append", type=Path, default=[], metavar="DIR",
        help="a run root to watch, added to runs.roots (repeatable)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="simulated GPUs (clearly labelled) for a machine without any"
    )
    parser.add_argument("--check-config", action="store_true", help="validate the config file and exit (0 ok, 1 bad)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> Config:
    """Load the file, then apply command-line overrides through the same validation."""
    config = load_config(args.config)
    try:
        if args.bind is not None:
            config.server.bind = args.bind
        if args.port is not None:
            config.server.port = args.port
        if args.runs:
            config.runs.roots = [*config.runs.roots, *args.runs]
        if args.demo:
            config.gpu.backend = "simulated"
        config.storage.path = config.storage.file(args.config.resolve().parent)
    except ValidationError as exc:
        raise ConfigError("command line", format_validation_error(exc)) from None
    return config


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)  # levels journald understands when run as a systemd service
    try:
        config = resolve_config(args)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    if args.check_config:
        print(f"{args.config}: configuration is valid")
        return 0

    from monitor.web.server import serve  # imported late: --check-config must not pay for the web stack

    demo_lab = None
    if args.demo and not config.runs.roots:
        from monitor.demo.lab import DemoLab
        from monitor.demo.trainer import make_demo_root

        demo_lab = DemoLab(make_demo_root(), config.gpu.simulated_count)
        scenario = demo_lab.start()  # before the GPU collector: the simulated GPUs list the trainers' pids
        config.runs.roots = [demo_lab.root]
        if config.gpu.simulated_scenario is None:
            config.gpu.simulated_scenario = scenario
    from monitor.model.storage import NewerSchemaError

    try:
        serve(config, demo_lab=demo_lab)
    except NewerSchemaError as exc:
        print(f"labwall: {exc}", file=sys.stderr)
        if demo_lab is not None:
            demo_lab.stop()
        return 1
    return 0


if __name__ in {"__main__", "__mp_main__"}:
    sys.exit(main())
