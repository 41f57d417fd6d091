"""The ``xca`` command: the provincial DI Common Service (XCA / XCA-I initiating gateway), and the
whole province on one machine."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from xca import config as config_mod

ROOT = Path(__file__).resolve().parents[1]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        cfg = config_mod.load(args.config, args.data_dir)
    except config_mod.ConfigError as e:
        print(f"xca: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=getattr(logging, cfg.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream request otherwise
    workers = args.workers or cfg.http.workers
    print(f"{cfg.name}: DI Common Service on {cfg.base_url}/xca/initiate over "
          f"{', '.join(c.name for c in cfg.communities)}", flush=True)
    if workers > 1:
        os.environ["XCA_CONFIG"] = os.path.abspath(args.config)
        os.environ["XCA_DATA_DIR"] = os.path.abspath(cfg.data_dir)
        uvicorn.run("xca.app:app_from_env", factory=True, host=cfg.http.host, port=cfg.http.port,
                    workers=workers, log_level="warning", access_log=False)
        return 0
    from xca.app import build_app

    uvicorn.run(build_app(cfg), host=cfg.http.host, port=cfg.http.port, log_level="warning", access_log=False)
    return 0


def _check_config(args: argparse.Namespace) -> int:
    try:
        config_mod.load(args.config)
    except config_mod.ConfigError as e:
        print(f"xca: {e}", file=sys.stderr)
        return 2
    print(f"{args.config}: OK")
    return 0


def _province(args: argparse.Namespace) -> int:
    from xca import province

    return province.run(Path(args.data_dir), patients=args.patients, seed=args.seed, load_demo=not args.no_demo,
                        fresh=args.fresh, conf_dir=Path(args.conf))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xca", description="DI Common Service (XCA / XCA-I initiating gateway)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the DI Common Service")
    serve.add_argument("--config", required=True, help="service configuration (TOML), e.g. conf/dics.toml")
    serve.add_argument("--data-dir", help="where its audit store is kept (default: data_dir of the config)")
    serve.add_argument("--workers", type=int, default=0, help="HTTP worker processes (default: from config)")
    serve.set_defaults(func=_serve)
    check = sub.add_parser("check-config", help="validate a DI Common Service configuration file")
    check.add_argument("config")
    check.set_defaults(func=_check_config)
    prov = sub.add_parser("province", help="run HDIRS, SWODIN, NEODIN and the DI Common Service with demo data")
    prov.add_argument("--data-dir", default="var/province", help="state of the four services (default var/province)")
    prov.add_argument("--conf", default=str(ROOT / "conf"),
                      help="directory with hdirs.toml, swodin.toml, neodin.toml and dics.toml (default conf/)")
    prov.add_argument("--patients", type=int, default=12, help="demo patients to generate (default 12)")
    prov.add_argument("--seed", type=int, default=2011, help="seed of the demo province")
    prov.add_argument("--no-demo", action="store_true", help="start empty: load no demo data")
    prov.add_argument("--fresh", action="store_true", help="remove the data directory first")
    prov.set_defaults(func=_province)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
