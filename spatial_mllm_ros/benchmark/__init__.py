"""VSI-Bench through the node's answering path (``spatial-mllm-vsibench``), sharded on Ray.

Modules: :mod:`.errors`; :mod:`.dataset` (the dataset card, parquet and scenes as published);
:mod:`.video` (mp4 decoding with PyAV, PNG frame folders); :mod:`.frames` (the reference's
frame choice and resize of each input path); :mod:`.cache` (space-aware selections on disk, one
VGGT pass per video); :mod:`.metrics` (the authors' reward and ``calculate_metrics``);
:mod:`.worker` (one engine answering scenes); :mod:`.pool` (workers as Ray actors);
:mod:`.results`, :mod:`.report`, :mod:`.runner`, :mod:`.cli`.
"""
