"""``spatial-mllm-serve``: the model on Ray Serve, for robots whose node has ``model.endpoint``.

Loads the profile's :class:`~spatial_mllm_ros.settings.Settings` (``--config``, ``-p``
overrides, ``--checkpoint``): the server's replicas load the engine of ``settings.engine`` as
the node's model process would. Starts Ray on this machine (or joins ``--ray ADDRESS``),
deploys :mod:`.app` and serves until SIGINT or SIGTERM, which delete the application and
shut Serve and Ray down (exit 0, the normal end).

Exit codes (:class:`~spatial_mllm_ros.exitcodes.ExitCode`): USAGE (2) for a bad flag or
parameter, no token, TLS files missing; INPUT (3) for a checkpoint directory that does not
exist; MODEL (4) when the replicas cannot load the model or Serve cannot start. One line on
stderr each.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from spatial_mllm_ros.answering.wire import TOKEN_ENV, WireLimits, load_token
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.param_flags import ParamFlag, add_param_flags, param_overrides
from spatial_mllm_ros.params import ParamError
from spatial_mllm_ros.sampling.qwen_grid import VIDEO_MAX_PIXELS
from spatial_mllm_ros.sampling.resize import VGGT_WIDTH
from spatial_mllm_ros.settings import Settings, parse_overrides

PROG = "spatial-mllm-serve"
#: The parameter flags (:mod:`spatial_mllm_ros.param_flags`); ``-p`` sets any parameter.
SERVE_FLAGS: tuple[ParamFlag, ...] = (
    ParamFlag("--checkpoint", "model.checkpoint", "checkpoint directory", "DIR"),
)


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the model of a parameter profile on Ray Serve for robots whose "
                    "node sets model.endpoint (README, 'Fleet'). Needs the shared token in "
                    f"${TOKEN_ENV} or --token-file.")
    p.add_argument("--config", default="cpu_tiny",
                   help="parameter profile: config/<NAME>.yaml or a YAML path (default cpu_tiny)")
    add_param_flags(p, SERVE_FLAGS)
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="override a parameter of the profile (model.*, answer.decoding, ...)")
    p.add_argument("--replicas", type=_positive_int, default=1,
                   help="model replicas, one engine each (default 1)")
    p.add_argument("--num-gpus", type=float, default=0.0,
                   help="GPUs each replica reserves (default 0; 1 per replica on a GPU host)")
    p.add_argument("--num-cpus", type=float, default=1.0,
                   help="CPUs each replica reserves (default 1)")
    p.add_argument("--max-ongoing", type=_positive_int, default=2,
                   help="requests one replica holds at once (default 2)")
    p.add_argument("--max-queued", type=_positive_int, default=8,
                   help="requests waiting for a replica; more are refused with HTTP 503 "
                        "(BUSY on the robot) (default 8)")
    p.add_argument("--client-cap", type=_positive_int, default=2,
                   help="requests one robot may have in flight; more get HTTP 429 (BUSY) "
                        "(default 2)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="join this Ray cluster instead of starting one here")
    p.add_argument("--token-file", default="",
                   help=f"file whose first line is the token (default: ${TOKEN_ENV})")
    p.add_argument("--tls-cert", default="", help="TLS certificate file (PEM): serve https")
    p.add_argument("--tls-key", default="", help="TLS private key file (PEM)")
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _fail(code: ExitCode, message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return int(code)


def serve_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-serve``; returns the exit code."""
    args = serve_parser().parse_args(argv)
    try:
        overrides = {**parse_overrides(args.param), **param_overrides(args, SERVE_FLAGS)}
        settings = Settings.from_profile(args.config, overrides)
    except (ParamError, OSError) as err:
        return _fail(ExitCode.USAGE, str(err))
    try:
        token = load_token(args.token_file)
    except OSError as err:
        return _fail(ExitCode.USAGE, f"cannot read --token-file: {err}")
    if not token:
        return _fail(ExitCode.USAGE, f"no token: set {TOKEN_ENV} or give --token-file "
                     "(every robot sends the same one)")
    if bool(args.tls_cert) != bool(args.tls_key):
        return _fail(ExitCode.USAGE, "give both --tls-cert and --tls-key, or neither")
    for path in (args.tls_cert, args.tls_key):
        if path and not Path(path).is_file():
            return _fail(ExitCode.USAGE, f"TLS file {path} does not exist")
    spec = settings.engine
    if spec.checkpoint and not Path(spec.checkpoint).is_dir():
        return _fail(ExitCode.INPUT, f"checkpoint directory {spec.checkpoint} does not exist")
    return _serve(args, settings, token)


def _description(settings: Settings) -> dict[str, Any]:
    """What ``/v1/health`` says of the model, known before any replica loads it."""
    from spatial_mllm_ros.model.configuration import load_config
    from spatial_mllm_ros.model.spec import resolve_checkpoint

    spec = settings.engine
    return {"checkpoint": spec.description, "layout": str(load_config(
        resolve_checkpoint(spec)).layout), "min_pixels": spec.min_pixels,
        "max_pixels": spec.max_pixels, "device": spec.device, "dtype": spec.dtype,
        "vision_backend": spec.vision.backend, "vision_precision": spec.vision.precision}


def _serve(args: argparse.Namespace, settings: Settings, token: str) -> int:
    import ray
    from ray import serve

    from spatial_mllm_ros.serving.app import APP_NAME, ServeOptions, build_app

    try:
        description = _description(settings)
    except Exception as err:  # a checkpoint without a readable config
        return _fail(ExitCode.MODEL, f"cannot read the checkpoint: {type(err).__name__}: {err}")
    limits = WireLimits(max_frames=settings.pipeline.max_frame_budget,
                        max_frame_pixels=max(settings.engine.max_pixels or VIDEO_MAX_PIXELS,
                                             VGGT_WIDTH * VGGT_WIDTH))
    options = ServeOptions(args.replicas, args.num_gpus, args.num_cpus, args.max_ongoing,
                           args.max_queued, args.client_cap, limits)
    http: dict[str, Any] = {"host": args.host, "port": args.port}
    if args.tls_cert:
        http.update(ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key)
    for name in ("ray", "ray.serve"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        if args.ray:
            ray.init(address=args.ray, log_to_driver=False)
        else:
            ray.init(address="local", include_dashboard=False, log_to_driver=False,
                     object_store_memory=1 << 30)
        serve.start(http_options=http, logging_config={"log_level": "WARNING"})
        serve.run(build_app(settings.engine, token, description, options), name=APP_NAME,
                  route_prefix="/")
    except KeyboardInterrupt:  # Ctrl-C while starting: the normal end too
        _shutdown(bool(args.ray))
        return int(ExitCode.OK)
    except Exception as err:  # replicas that cannot load, a port in use, Ray not starting
        _shutdown(bool(args.ray))
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        return _fail(ExitCode.MODEL, f"the server did not start: {reason[:400]}")
    stop = threading.Event()  # after Ray's start, which installs handlers of its own
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheme = "https" if args.tls_cert else "http"
    print(f"{PROG}: serving {description['checkpoint']} ({args.replicas} replica(s)) on "
          f"{scheme}://{args.host}:{args.port}; Ctrl-C stops", file=sys.stderr, flush=True)
    stop.wait()
    _shutdown(bool(args.ray))
    return int(ExitCode.OK)


def _shutdown(joined: bool) -> None:
    """Remove the application; shut down Serve and Ray when this command started them."""
    import ray
    from ray import serve

    from spatial_mllm_ros.serving.app import APP_NAME

    try:
        if joined:
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
    except Exception:  # Serve never came up
        pass
    ray.shutdown()
    os.environ.pop("RAY_ADDRESS", None)


if __name__ == "__main__":
    raise SystemExit(serve_main())
