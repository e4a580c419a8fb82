"""Shipping models: ONNX export (:mod:`.backbone_onnx`)."""
