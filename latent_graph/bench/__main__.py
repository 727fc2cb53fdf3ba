"""``python -m latent_graph.bench``: the bench command without the main CLI."""

from latent_graph.bench.cli import main

raise SystemExit(main())
