"""Shipping models: ONNX export of the backbone (:mod:`.backbone_onnx`) and of
whole detectors and segmentors (:mod:`.model_export`, graphs in
:mod:`.detector_onnx` and :mod:`.segmentor_onnx`), scored in onnxruntime with
the config's evaluator (:mod:`.onnx_evaluation`)."""
