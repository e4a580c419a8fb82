"""What ``tools/analysis_tools/benchmark.py`` measures: backbones side by side
(:mod:`.backbone`), ``with_cp`` memory (:mod:`.cp_memory`) and Faster R-CNN
training (:mod:`.e2e`), with interleaved timing and peak memory
(:mod:`.timing`) and the peer models (:mod:`.peers`)."""
