"""Where one image's predict time goes, per part of the model: backbone,
neck, RPN (its convs), RoI head (RoIAlign and the box head), decode head,
and post-processing (everything else: anchors, top-k, box decoding, NMS,
resizing, the conversion to data samples).

- An eager model (:func:`eager_part_times`): each part's ``forward`` is
  timed; post-processing is the predict time less the parts.
- An ONNX file in onnxruntime (:func:`onnx_part_times`): the runtime's own
  profiler, each node's time filed under the part its name starts with
  (``/backbone/...``, ``/bbox_head/...``; ``RoiAlign`` nodes under the RoI
  head); the session's time outside its nodes goes to post-processing.
"""
import json
import os
import tempfile
import time
from collections import defaultdict
from typing import Callable, Dict, List

from torch import Tensor, nn

#: Rows of the profile, by task.
PARTS = {'mmdet': ('backbone', 'neck', 'RPN', 'RoI head', 'post-processing'),
         'mmseg': ('backbone', 'neck', 'decode head', 'post-processing')}
#: Module paths of the eager model -> row.
EAGER_MODULES = {'backbone': 'backbone', 'neck': 'neck', 'rpn_head': 'RPN',
                 'roi_head.bbox_roi_extractor': 'RoI head',
                 'roi_head.bbox_head': 'RoI head',
                 'decode_head': 'decode head'}
#: First component of an ONNX node name -> row.
ONNX_PREFIXES = {'backbone': 'backbone', 'neck': 'neck', 'rpn_head': 'RPN',
                 'bbox_head': 'RoI head', 'decode_head': 'decode head'}


def _module(model: nn.Module, path: str):
    for name in path.split('.'):
        model = getattr(model, name, None)
    return model


def eager_part_times(model: nn.Module, scope: str,
                     predict: Callable[[], object],
                     repeats: int) -> Dict[str, float]:
    """Median seconds per part of ``predict()`` (an eager model's predict
    on one image) over ``repeats`` calls."""
    spent: Dict[str, float] = defaultdict(float)
    wrapped = []
    for path, row in EAGER_MODULES.items():
        module = _module(model, path)
        if module is None or row not in PARTS[scope]:
            continue
        wrapped.append(module)
        # the instance's forward, not hooks: mmseg's decode head is run as
        # decode_head.forward(...), which no hook sees
        module.forward = _timed(module.forward, spent, row)
    runs: List[Dict[str, float]] = []
    try:
        for _ in range(repeats):
            spent.clear()
            start = time.perf_counter()
            predict()
            total = time.perf_counter() - start
            run = {row: spent.get(row, 0.0) for row in PARTS[scope]}
            run['post-processing'] = total - sum(spent.values())
            runs.append(run)
    finally:
        for module in wrapped:
            del module.forward
    return _median(runs)


def _timed(forward: Callable, spent: Dict[str, float],
           row: str) -> Callable:
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return forward(*args, **kwargs)
        finally:
            spent[row] += time.perf_counter() - start
    return timed


def _median(runs: List[Dict[str, float]]) -> Dict[str, float]:
    rows = runs[0].keys()
    return {row: sorted(r[row] for r in runs)[len(runs) // 2] for row in rows}


def onnx_part_times(path: str, scope: str, image: Tensor, repeats: int,
                    threads: int) -> Dict[str, float]:
    """Median seconds per part of one onnxruntime run of the ONNX file
    ``path`` on ``image`` ``(1, 3, H, W)``, from the runtime's profiler."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, 'profile')
        session = ort.InferenceSession(path, options,
                                       providers=['CPUExecutionProvider'])
        feed = {'image': image.contiguous().numpy()}
        session.run(None, feed)  # the first run allocates: not counted
        for _ in range(repeats):
            session.run(None, feed)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    runs = _runs(events, scope)[1:]
    for run in runs:
        total = run.pop('total')
        run['post-processing'] += total - sum(run.values())
    return _median(runs)


def _runs(events: List[dict], scope: str) -> List[Dict[str, float]]:
    """Per ``model_run`` event, its total and its nodes' times by row (a
    node belongs to the first run that ends after it)."""
    runs: List[Dict[str, float]] = []
    current = {row: 0.0 for row in PARTS[scope]}
    for event in sorted(events, key=lambda e: e.get('ts', 0)
                        + e.get('dur', 0)):
        if event.get('name') == 'model_run':
            current['total'] = event['dur'] / 1e6
            runs.append(current)
            current = {row: 0.0 for row in PARTS[scope]}
        elif event.get('cat') == 'Node' and event['name'].endswith(
                '_kernel_time'):
            node = event['name'][:-len('_kernel_time')]
            current[_row(node, event['args'].get('op_name', ''),
                         scope)] += event['dur'] / 1e6
    return runs


def _row(node: str, op: str, scope: str) -> str:
    if op == 'RoiAlign':
        return 'RoI head'
    parts = node.split('/')
    row = ONNX_PREFIXES.get(parts[1]) if len(parts) > 2 else None
    return row if row in PARTS[scope] else 'post-processing'


def profile_table(profiles: Dict[str, Dict[str, float]],
                  scope: str) -> List[str]:
    """Markdown: one column per model, ms and share per part."""
    names = list(profiles)
    lines = ['| part | ' + ' | '.join(names) + ' |',
             '|---|' + '---|' * len(names)]
    rows = [row for row in PARTS[scope]
            if any(p.get(row, 0.0) > 0 for p in profiles.values())]
    for row in rows + ['total']:
        cells = []
        for name in names:
            total = sum(profiles[name].values())
            ms = total if row == 'total' else profiles[name].get(row, 0.0)
            cells.append(f'{ms * 1000:.0f} ms' + (
                '' if row == 'total' else f' ({100 * ms / total:.0f}%)'))
        lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
    return lines
