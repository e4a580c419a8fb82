"""Looking into a ResNeSt: output levels (:mod:`.backbone_summary`)."""
