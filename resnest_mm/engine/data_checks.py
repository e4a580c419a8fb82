"""Fail early, with the config key and the path, when the data is not there.

Without these checks a missing annotation file surfaces deep inside a
dataloader worker, and an empty training set makes mmengine's infinite sampler
spin forever. Only local paths are checked; other storage backends are left to
mmengine.
"""
import os.path as osp
from typing import Dict, Iterator, List, Tuple

from mmengine.config import Config, ConfigDict

#: Dataloaders the train and test tools read, by tool.
TRAIN_LOADERS = ('train_dataloader', 'val_dataloader')
TEST_LOADERS = ('test_dataloader',)

TOY_HINT = ('for the built-in toy data run `python '
            'tools/misc/make_toy_data.py {coco,ade20k,cls}`, or point '
            'data_root at your copy with --cfg-options')


def _datasets(cfg: ConfigDict, key: str) -> Iterator[Tuple[str, ConfigDict]]:
    """``(config key, dataset cfg)`` of every leaf dataset under ``key``.

    Wrappers (``RepeatDataset``, ``ClassBalancedDataset``, ``ConcatDataset``)
    hold their datasets in ``dataset`` or ``datasets``.
    """
    if 'dataset' in cfg:
        yield from _datasets(cfg.dataset, f'{key}.dataset')
    elif 'datasets' in cfg:
        for i, sub in enumerate(cfg.datasets):
            yield from _datasets(sub, f'{key}.datasets[{i}]')
    else:
        yield key, cfg


def _local_path(data_root: str, path: str) -> str:
    return path if not data_root or osp.isabs(path) else osp.join(
        data_root, path)


def _data_prefixes(dataset: ConfigDict) -> Dict[str, str]:
    """``data_prefix`` as ``{name: folder}``: mmdet and mmseg give a dict,
    MMPretrain's ``CustomDataset`` also a bare folder (``'train'``)."""
    prefix = dataset.get('data_prefix') or {}
    return {'': prefix} if isinstance(prefix, str) else dict(prefix)


def missing_data_paths(cfg: Config, loaders: Tuple[str, ...]) -> List[str]:
    """One message per configured annotation file or folder that is absent."""
    problems = []
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for key, dataset in _datasets(cfg[loader], loader):
            if dataset.get('backend_args'):
                continue
            data_root = dataset.get('data_root') or ''
            if data_root and not osp.isdir(data_root):
                problems.append(f'{key}.data_root: folder {data_root!r} '
                                'does not exist')
                continue
            if dataset.get('ann_file'):
                path = _local_path(data_root, dataset.ann_file)
                if not osp.isfile(path):
                    problems.append(f'{key}.ann_file: file {path!r} does '
                                    'not exist')
            for name, folder in _data_prefixes(dataset).items():
                path = _local_path(data_root, folder)
                if folder and not osp.isdir(path):
                    where = f'.{name}' if name else ''
                    problems.append(f'{key}.data_prefix{where}: folder '
                                    f'{path!r} does not exist')
    return problems


def check_data_paths(cfg: Config, loaders: Tuple[str, ...]) -> None:
    """Raise ``FileNotFoundError`` listing every missing data path."""
    problems = missing_data_paths(cfg, loaders)
    if problems:
        raise FileNotFoundError('dataset files are missing:\n  ' +
                                '\n  '.join(problems) + f'\n{TOY_HINT}')


def built_dataset(runner, loader: str):
    """The dataset of ``runner.<loader>``, built now, refused if empty.

    Detection training skips images without objects (mmdet's
    ``filter_cfg.filter_empty_gt``). When that leaves nothing, mmengine either
    fails while packing the empty list (numpy's "need at least one array to
    concatenate") or, without ``serialize_data``, its infinite sampler never
    yields a batch. Both become one ``ValueError`` that says what to check.
    """
    try:
        dataset = getattr(runner, loader).dataset
    except ValueError as err:
        if 'need at least one array to concatenate' not in str(err):
            raise
        raise _empty_error(runner.cfg, loader) from err
    if len(dataset) == 0:
        raise _empty_error(runner.cfg, loader)
    return dataset


def _empty_error(cfg: Config, loader: str) -> ValueError:
    datasets = [d for _, d in _datasets(cfg[loader], loader)]
    ann_files = [_local_path(d.get('data_root') or '', d.ann_file)
                 for d in datasets if d.get('ann_file')]
    if not ann_files:  # mmseg and MMPretrain list the images of a folder
        folders = [_local_path(d.get('data_root') or '', folder)
                   for d in datasets
                   for name, folder in _data_prefixes(d).items()
                   if name in ('', 'img_path')]
        return ValueError(f'{loader}: the dataset has no samples: no images '
                          f"(img_suffix, e.g. '.jpg') in {folders}")
    return ValueError(
        f'{loader}: the dataset has no samples (annotation files '
        f'{ann_files}). Training skips images without objects; check that '
        "the annotation file lists images with objects of the config's "
        'classes (metainfo.classes)')
