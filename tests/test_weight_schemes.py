"""``official://``, ``timm://`` and mmengine's URL schemes, without a network.

They run against a pre-filled torch hub cache. No test touches the network:
the cache is a temporary directory and a download attempt fails the test,
even though ``RESNEST_MM_OFFLINE`` allows downloads (so a file that is found
is proven to be found without one); tests of missing files replace the
downloader with one that fails as an unreachable network does.
Release files are stood in for by random checkpoints written with the
sources' own code; their table entries are pointed at names that carry the
stand-ins' real sha256, as torch hub's convention requires.
"""
import hashlib
import os
import pickle
import shlex
import urllib.error

import pytest
import resnest.torch as official
import timm
import torch
from mmdet.models.backbones.resnest import ResNeSt as MMDetResNeSt
from mmdet.registry import MODELS
from mmengine.runner.checkpoint import (CheckpointLoader, get_external_models,
                                        get_mmcls_models,
                                        get_torchvision_models)

from conftest import randomize_
from resnest_mm.models import ARCH_PRESETS
from resnest_mm.weights import (OFFLINE_ENV, ArchMismatchError,
                                convert_checkpoint, read_weights, schemes)
from resnest_mm.weights.arch_check import ARCH_METADATA_KEY
from resnest_mm.weights.schemes import (OFFICIAL_WEIGHTS, TIMM_WEIGHTS,
                                        NamedWeights)
from test_convert_equivalence import (  # noqa: F401 (autouse fixture)
    _fast_cpu, build_mmpretrain_classifier)

RESNEST50 = OFFICIAL_WEIGHTS['resnest50']


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """torch hub's checkpoint cache, empty, in ``tmp_path``; downloads are
    allowed, and an attempt fails the test."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    monkeypatch.setenv(OFFLINE_ENV, '0')

    def no_network(url, *args, **kwargs):
        raise AssertionError(f'a test tried to download {url}')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    cache = tmp_path / 'checkpoints'
    cache.mkdir()
    yield cache
    torch.hub.set_dir(old)


def test_tables_match_the_sources():
    official_sha = {**official.resnest._model_sha256,
                    **official.ablation._model_sha256}
    assert {n: w.hash_prefix for n, w in OFFICIAL_WEIGHTS.items()} == \
        official_sha
    assert sorted(TIMM_WEIGHTS) == sorted(timm.list_models('resnest*'))
    for table in (OFFICIAL_WEIGHTS, TIMM_WEIGHTS):
        for name, weights in table.items():
            assert weights.arch == name and name in ARCH_PRESETS
            assert len(weights.hash_prefix) == 8
            assert weights.url.startswith('https://github.com/')


def stand_in(cache, table, monkeypatch, name, build):
    """Write ``build()``'s random weights into the cache as ``name``'s file.

    Returns the file's path; the table entry now names that file.
    """
    tmp = cache / 'tmp.pth'
    torch.save(randomize_(build()).state_dict(), tmp)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    weights = NamedWeights(f'https://example.invalid/{name}-{sha[:8]}.pth',
                           table[name].arch)
    monkeypatch.setitem(table, name, weights)
    path = cache / weights.file_name
    tmp.rename(path)
    return str(path)


@pytest.mark.parametrize('scheme,table,name,build', [
    ('official://', OFFICIAL_WEIGHTS, 'resnest50_fast_1s4x24d',
     official.resnest50_fast_1s4x24d),
    ('timm://', TIMM_WEIGHTS, 'resnest14d',
     lambda: timm.create_model('resnest14d')),
], ids=['official', 'timm'])
def test_named_weights_load_from_the_cache(scheme, table, name, build,
                                           hub_cache, monkeypatch):
    path = stand_in(hub_cache, table, monkeypatch, name, build)
    checkpoint = CheckpointLoader.load_checkpoint(scheme + name)
    state_dict = checkpoint['state_dict']
    assert state_dict._metadata[''][ARCH_METADATA_KEY] == dict(
        arch=name, avd_first=ARCH_PRESETS[name].avd_first)
    expected = convert_checkpoint(read_weights(path)).state_dict
    assert sorted(state_dict) == sorted(expected)

    model = MODELS.build(dict(type='ResNeSt', arch=name, init_cfg=dict(
        type='Pretrained', checkpoint=scheme + name)))
    model.init_weights()
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())


def test_the_recorded_variant_is_checked(hub_cache, monkeypatch):
    # same shapes as resnest50d; only the recorded avd_first tells them apart
    stand_in(hub_cache, OFFICIAL_WEIGHTS, monkeypatch,
             'resnest50_fast_2s1x64d', official.resnest50_fast_2s1x64d)
    model = MODELS.build(dict(type='ResNeSt', arch='resnest50d', init_cfg=dict(
        type='Pretrained', checkpoint='official://resnest50_fast_2s1x64d')))
    with pytest.raises(ArchMismatchError,
                       match='trained with avd_first=True, the model has '
                       "avd_first=False.*arch='resnest50_fast_2s1x64d'"):
        model.init_weights()


def test_a_file_with_the_wrong_hash_is_rejected(hub_cache):
    path = hub_cache / RESNEST50.file_name
    path.write_bytes(b'not the release file')
    with pytest.raises(RuntimeError,
                       match=f'{path} has sha256 .* but its name promises '
                       '528c19ca.*Delete it and fetch it again'):
        CheckpointLoader.load_checkpoint('official://resnest50')


# checkpoint, the URL it stands for, the hash prefix the download is checked
# against, the file name torch hub keeps it under
MISSING = [
    ('open-mmlab://resnest50', 'https://download.openmmlab.com/pretrain/'
     'third_party/resnest50_d2-7497a55b.pth', None,
     'resnest50_d2-7497a55b.pth'),
    ('mmcls://resnest50', 'https://download.openmmlab.com/mmclassification/'
     'v0/resnest/resnest50_imagenet_converted-1ebf0afe.pth', None,
     'resnest50_imagenet_converted-1ebf0afe.pth'),
    ('torchvision://resnet50',
     'https://download.pytorch.org/models/resnet50-0676ba61.pth', None,
     'resnet50-0676ba61.pth'),
    ('https://example.invalid/w/resnest50.pth?dl=1',
     'https://example.invalid/w/resnest50.pth?dl=1', None, 'resnest50.pth'),
    ('http://example.invalid/w/resnest50.pth',
     'http://example.invalid/w/resnest50.pth', None, 'resnest50.pth'),
    ('official://resnest50', 'https://github.com/zhanghang1989/ResNeSt/'
     'releases/download/weights_step1/resnest50-528c19ca.pth', '528c19ca',
     'resnest50-528c19ca.pth'),
    ('timm://resnest50d', 'https://github.com/rwightman/pytorch-image-models/'
     'releases/download/v0.1-resnest/resnest50-528c19ca.pth', '528c19ca',
     'resnest50-528c19ca.pth'),
]
MISSING_IDS = [uri.split(':')[0] for uri, *_ in MISSING]


@pytest.fixture
def unreachable(hub_cache, monkeypatch):
    """A downloader that fails as without network; its calls."""
    calls = []

    def download(url, dst, hash_prefix=None, **kwargs):
        calls.append((url, dst, hash_prefix))
        raise urllib.error.URLError('Temporary failure in name resolution')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    return calls


def assert_says_what_to_fetch(msg, uri, url, path):
    assert f'checkpoint={uri!r}' in msg
    assert f'Fetch {url} and put it at {path}' in msg
    assert f'curl -fL --create-dirs -o {path} {shlex.quote(url)}\n' in msg


@pytest.mark.parametrize('uri,url,hash_prefix,file_name', MISSING,
                         ids=MISSING_IDS)
def test_a_failed_download_says_what_to_fetch_and_where(
        uri, url, hash_prefix, file_name, hub_cache, unreachable):
    model = MODELS.build(dict(type='ResNeSt', depth=14, init_cfg=dict(
        type='Pretrained', checkpoint=uri)))
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    path = str(hub_cache / file_name)
    assert unreachable == [(url, path, hash_prefix)]
    msg = str(err.value)
    assert 'downloading it failed (<urlopen error Temporary failure in name ' \
        'resolution>)' in msg
    assert_says_what_to_fetch(msg, uri, url, path)


@pytest.mark.parametrize('uri,url,hash_prefix,file_name', MISSING,
                         ids=MISSING_IDS)
def test_offline_a_missing_file_is_not_downloaded(
        uri, url, hash_prefix, file_name, hub_cache, unreachable,
        monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, '1')
    with pytest.raises(FileNotFoundError) as err:
        CheckpointLoader.load_checkpoint(uri)
    assert unreachable == []
    msg = str(err.value)
    assert f'{OFFLINE_ENV} forbids downloads' in msg
    assert_says_what_to_fetch(msg, uri, url, str(hub_cache / file_name))


@pytest.mark.parametrize('uri,match', [
    ('timm://resnest77', "timm:// has no weights named 'resnest77'; "
     "choose one of .*'resnest101e'"),
    ('open-mmlab://resnest77', "'resnest77' is not in mmengine's open-mmlab "
     r"table \(\d+ names\); the closest are \[.*'resnest50'"),
    ('mmcls://resnest77', "'resnest77' is not in mmengine's mmcls table "
     r"\(\d+ names\); the closest are \[.*'resnest50'"),
    ('torchvision://resnet77', "'resnet77' is not in mmengine's torchvision "
     r"table \(\d+ names\); the closest are \[.*'resnet50'"),
], ids=['timm', 'open-mmlab', 'mmcls', 'torchvision'])
def test_an_unknown_name_lists_known_ones(uri, match):
    with pytest.raises(ValueError, match=match):
        CheckpointLoader.load_checkpoint(uri)


def test_local_safetensors_files_get_their_own_loader():
    loader = CheckpointLoader._get_checkpoint_loader
    # mmengine's own schemes are untouched
    assert loader('open-mmlab://resnest50').__name__ == 'load_from_openmmlab'
    assert loader('/w/model.safetensors') is \
        schemes.load_from_local_safetensors
    assert loader('model.safetensors') is schemes.load_from_local_safetensors
    assert loader('https://hf.co/model.safetensors') is not \
        schemes.load_from_local_safetensors
    assert loader('/w/model.pth') is not schemes.load_from_local_safetensors


def cached_as(cache, url: str, obj) -> None:
    """Save ``obj`` where torch hub keeps ``url``'s download."""
    torch.save(obj, cache / os.path.basename(url))


def test_open_mmlab_resnest50_loads_from_the_cache(hub_cache):
    mmdet_backbone = randomize_(MMDetResNeSt(depth=50, stem_channels=64))
    cached_as(hub_cache, get_external_models()['resnest50'],
              mmdet_backbone.state_dict())
    model = MODELS.build(dict(
        type='ResNeSt', depth=50, stem_channels=64,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest50')))
    model.init_weights()
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v)
               for k, v in mmdet_backbone.state_dict().items())


def test_mmcls_resnest50_is_converted(hub_cache):
    classifier = randomize_(build_mmpretrain_classifier(
        num_classes=10, depth=50, stem_channels=64))
    cached_as(hub_cache, get_mmcls_models()['resnest50'],
              {'meta': {}, 'state_dict': classifier.state_dict()})
    model = MODELS.build(dict(type='ResNeSt', depth=50, stem_channels=64,
                              init_cfg=dict(type='Pretrained',
                                            checkpoint='mmcls://resnest50')))
    model.init_weights()
    expected = convert_checkpoint(classifier.state_dict()).state_dict
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())


CALLED = []


def _record_call():
    CALLED.append('unpickling ran code')


class RunsCodeWhenUnpickled:
    def __reduce__(self):
        return _record_call, ()


@pytest.mark.parametrize('uri,url', [
    ('https://example.invalid/evil.pth', 'https://example.invalid/evil.pth'),
    ('http://example.invalid/evil.pth', 'http://example.invalid/evil.pth'),
    ('open-mmlab://resnest101', get_external_models()['resnest101']),
    ('mmcls://resnest101', get_mmcls_models()['resnest101']),
    ('torchvision://resnet50', get_torchvision_models()['resnet50']),
], ids=['https', 'http', 'open-mmlab', 'mmcls', 'torchvision'])
def test_downloaded_files_cannot_run_code(uri, url, hub_cache):
    cached_as(hub_cache, url, {'state_dict': {}, 'x': RunsCodeWhenUnpickled()})
    with pytest.raises(pickle.UnpicklingError, match='Weights only load'):
        CheckpointLoader.load_checkpoint(uri)
    assert CALLED == []
