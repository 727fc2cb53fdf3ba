"""``latent-graph serve``: deploy latent graphs behind Ray Serve (HTTP on loopback by default).

Examples::

    latent-graph serve                                  # in-process Ray, default model, 127.0.0.1:8000
    latent-graph serve --steps 4 --max-new-tokens 64 --max-batch-size 16 --batch-wait-ms 20
    latent-graph serve --address auto --num-replicas 4 --num-gpus 1 --device cuda --model Qwen/Qwen3-4B
    latent-graph serve --autoscale 1,8 --host 0.0.0.0 --port 8080

    curl -s 127.0.0.1:8000/v1/answer -d '{"question": "What is 12 times 7?"}'
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from latent_graph import InvalidArgumentError
from latent_graph.cli.model_options import add_model_args, model_kwargs
from latent_graph.graphs import DEFAULT_GRAPH, GRAPHS, GraphOptions
from latent_graph.graphs.roles import ANSWER_FORMATS


def _autoscale(spec: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in spec.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--autoscale wants MIN,MAX (e.g. 1,4), got {spec!r}") from None
    return lo, hi


def config_of(args: argparse.Namespace) -> Any:
    """The :class:`ServeConfig` described by the parsed arguments."""
    from latent_graph.serve.config import ServeConfig

    graphs = tuple(g.strip() for g in args.graphs.split(",") if g.strip())
    return ServeConfig(
        model=args.model,
        model_factory=args.model_factory,
        **model_kwargs(args),
        graphs=graphs,
        default_graph=args.default_graph,
        steps=args.steps,
        max_new_tokens=args.max_new_tokens,
        task=args.task,
        max_batch_size=args.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_ms / 1000.0,
        num_replicas=None if args.autoscale else args.num_replicas,
        autoscale=args.autoscale,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        torch_threads=args.torch_threads,
        checkpoint_dir=args.checkpoint_dir,
        host=args.host,
        port=args.port,
        **({"allowed_hosts": tuple(h for h in args.allow_host.split(",") if h)} if args.allow_host else {}),
        **({"allowed_origins": tuple(o for o in args.allow_origin.split(",") if o)} if args.allow_origin else {}),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Validate the settings, then serve until Ctrl-C."""
    cfg = config_of(args)
    try:
        from latent_graph.serve.app import start
    except ImportError as exc:
        raise InvalidArgumentError(f"serving needs Ray Serve: pip install 'latent-graph[serve]' ({exc})") from exc
    print(
        f"latent-graph serve: http://{cfg.host}:{cfg.port}  (POST /v1/answer, /v1/stream, /v1/chat/completions; "
        "GET /healthz)  Ctrl-C stops",
        file=sys.stderr,
    )
    start(cfg, address=args.address, num_cpus=args.ray_cpus, blocking=True)
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` command to the main CLI's subparsers."""
    p = subparsers.add_parser("serve", help="serve graphs over HTTP to many concurrent users (Ray Serve)")
    add_model_args(p)  # --device defaults to cuda when --num-gpus > 0 (ServeConfig.load_model)
    p.add_argument(
        "--model-factory",
        default=None,
        metavar="MODULE:ATTR",
        help="zero-argument function returning a LocalLatentModel (instead of --model)",
    )
    p.add_argument("--graphs", default=",".join(GRAPHS), help="graph names clients may use (default all)")
    p.add_argument(
        "--default-graph",
        default="",
        help=f"graph of requests that name none (default {DEFAULT_GRAPH}, the CLI's, when served)",
    )
    p.add_argument(
        "--steps", type=int, default=GraphOptions.steps, help="default latent steps per agent (requests may override)"
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=GraphOptions.max_new_tokens,
        help="default answer length (requests may override)",
    )
    p.add_argument("--task", default=GraphOptions.task, choices=tuple(ANSWER_FORMATS), help="default answer format")
    p.add_argument("--max-batch-size", type=int, default=8, help="most requests coalesced into one graph.invoke")
    p.add_argument("--batch-wait-ms", type=float, default=50.0, help="how long a batch waits to fill (ms)")
    p.add_argument("--num-replicas", type=int, default=1, help="model replicas (each loads its own model)")
    p.add_argument(
        "--autoscale",
        type=_autoscale,
        default=None,
        metavar="MIN,MAX",
        help="let Ray autoscale replicas between MIN and MAX (instead of --num-replicas)",
    )
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs reserved per replica")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per replica (e.g. 1, or 0.5 to share)")
    p.add_argument("--torch-threads", type=int, default=None, help="torch threads per replica (default num-cpus)")
    p.add_argument("--checkpoint-dir", default=None, help="per-replica SQLite checkpoints here (default: none)")
    p.add_argument(
        "--address",
        default=None,
        help="join a Ray cluster (auto, or ray://HOST:10001); default: in-process Ray on this machine",
    )
    p.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the in-process Ray (ignored with --address)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--allow-host",
        default=None,
        metavar="NAMES",
        help="Host header names to answer, comma-separated (default: loopback names; others get 421)",
    )
    p.add_argument(
        "--allow-origin",
        default=None,
        metavar="ORIGINS",
        help="browser Origins allowed, comma-separated (default: http(s) origins on an allowed host)",
    )
    p.set_defaults(func=cmd_serve)
    return p
