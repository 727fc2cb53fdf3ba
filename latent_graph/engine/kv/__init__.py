"""What a handle's KV cache keeps: compressed edges (column policy, scores, selection) and shared prefixes.

- :mod:`.policy`: :class:`KVPolicy`, which columns cross an edge, and its checks;
- :mod:`.scores`: training-free column scores (key norms, recorded or probed attention);
- :mod:`.selection`: :func:`compress`, the columns kept per row and the smaller handle;
- :mod:`.probe`: attention weights of a few probe queries (routes the model's attention, outputs unchanged);
- :mod:`.prefix`: :class:`SharedPrefixes`, shared prompt prefixes prefilled once.
"""

from latent_graph.engine.kv.policy import CALIBRATED_HEADS, SCOPES, SCORES, KVPolicy, check_kv
from latent_graph.engine.kv.prefix import DEFAULT_PREFIX_BYTES, PrefixStats, SharedPrefixes, enable_prefixes
from latent_graph.engine.kv.scores import calibrated_heads, column_scores, key_norm_scores, observing
from latent_graph.engine.kv.selection import apply_selection, compress, kept_total, select

__all__ = [
    "CALIBRATED_HEADS",
    "DEFAULT_PREFIX_BYTES",
    "SCOPES",
    "SCORES",
    "KVPolicy",
    "PrefixStats",
    "SharedPrefixes",
    "apply_selection",
    "calibrated_heads",
    "check_kv",
    "column_scores",
    "compress",
    "enable_prefixes",
    "kept_total",
    "key_norm_scores",
    "observing",
    "select",
]
