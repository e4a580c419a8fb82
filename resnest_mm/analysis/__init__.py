"""Looking into a ResNeSt: output levels (:mod:`.backbone_summary`) and what
each variant costs (:mod:`.costs`)."""
