"""See what split attention does: record every split-attention layer's radix
weights and splits (:mod:`.split_attention_probe`), draw selectivity
profiles, split maps and stage outputs (:mod:`.split_attention_plots`), from
a config's model or a bare arch preset (:mod:`.model_inputs`)."""
from resnest_mm.visualization.split_attention_plots import (
    VIEW_FILES, save_selectivity_profile, save_split_attention_views,
    save_split_maps, save_stage_outputs)
from resnest_mm.visualization.split_attention_probe import (
    SplitAttentionProbe, SplitAttentionRecord, block_summary, dominant_split,
    last_block_per_stage, normalised_entropy, split_attention_layers,
    split_contributions)

__all__ = [
    'SplitAttentionProbe', 'SplitAttentionRecord', 'VIEW_FILES',
    'block_summary', 'dominant_split', 'last_block_per_stage',
    'normalised_entropy', 'save_selectivity_profile',
    'save_split_attention_views', 'save_split_maps', 'save_stage_outputs',
    'split_attention_layers', 'split_contributions'
]
