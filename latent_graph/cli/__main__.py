"""``python -m latent_graph.cli``: the ``latent-graph`` command."""

import sys

from latent_graph.cli import main

sys.exit(main())
