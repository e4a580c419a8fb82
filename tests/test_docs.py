"""The user docs check themselves: README.md, CONTRIBUTING.md, docs/ and
configs/README.md.

- every relative link and image resolves (a ``#anchor`` to a Markdown page
  names one of its headings);
- every ``python tools/...`` and ``bash tools/...`` command shown (fenced
  shell blocks and inline code) names an existing tool, and its arguments
  parse with that tool's own argparse (parse only, nothing runs); so do the
  commands of mmdet's and mmseg's own tools (``python $MMDET/.mim/tools/..``);
- every config path shown (``configs/...py``, ``mmdet::...py``) exists;
- the Python config blocks that load the plugin build our backbone;
- the docs hold no test counts, suite times or build-log phrases.

The checks are functions of one page's text, so the tests at the end can
show each of them failing on a page that breaks it.
"""
import contextlib
import importlib
import io
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO, load_tool
from resnest_mm.models import ResNeSt

PAGES = sorted([REPO / 'README.md', REPO / 'CONTRIBUTING.md',
                REPO / 'configs' / 'README.md',
                *(REPO / 'docs').rglob('*.md')])
#: User docs: no development matters in them (CONTRIBUTING.md has those).
USER_PAGES = [p for p in PAGES if p.name != 'CONTRIBUTING.md']
SHELL_LANGS = {'', 'bash', 'sh', 'shell', 'console'}
#: ``$VAR`` in a command shown -> the package whose folder it stands for.
PACKAGE_VARS = {'$MMDET': 'mmdet', '$MMSEG': 'mmseg'}
#: Wrappers -> (the tool they run, its positional arguments): the wrapper
#: takes those, then the process count, then the tool's flags
#: (``dist_train.sh CONFIG GPUS [train.py flags]``).
WRAPPERS = {
    'tools/dist_train.sh': ('tools/train.py', 1),
    'tools/dist_test.sh': ('tools/test.py', 2),
}
FENCE = re.compile(r'^```(\w*)[^\n]*\n(.*?)^```', re.S | re.M)
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
INLINE_CODE = re.compile(r'`([^`\n]+)`')
CONFIG_PATH = re.compile(r'(?<![\w/.:])configs/[\w./-]+\.py\b')
PACKAGE_CONFIG = re.compile(r'\b(mmdet|mmseg|mmpretrain)::([\w./-]+\.py)')
#: Build-log language and numbers that go stale: never in user docs.
STALE = re.compile(
    r'\b(\d+ (tests|passed|failed)\b|today|yesterday|this session|tried and|'
    r'not shipped|no GPU has been lent|not installed here|newest pair|'
    r'suite (takes|took|ran))', re.I)


def page_id(path: Path) -> str:
    """The page's path in the repository (its file name elsewhere)."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else (
        path.name)


def without_code(text: str) -> str:
    """``text`` without fenced blocks and inline code (links there are
    examples, not links)."""
    return INLINE_CODE.sub('', FENCE.sub('', text))


def heading_anchors(text: str) -> set:
    """GitHub's anchors for the headings of a Markdown page."""
    anchors = set()
    for line in FENCE.sub('', text).splitlines():
        if line.startswith('#'):
            title = line.lstrip('#').strip().lower()
            anchors.add(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
    return anchors


def link_errors(page: Path, text: str) -> List[str]:
    """A line per relative link or image of ``page`` that does not
    resolve."""
    errors = []
    for target in LINK.findall(without_code(text)):
        if re.match(r'[a-z]+:', target):  # http(s), mailto
            continue
        path, _, anchor = target.partition('#')
        resolved = (page.parent / path) if path else page
        if not resolved.exists():
            errors.append(f'{page_id(page)}: link {target!r}: no such file '
                          f'{os.path.normpath(resolved)}')
        elif anchor and resolved.suffix == '.md' and anchor not in (
                heading_anchors(resolved.read_text())):
            errors.append(f'{page_id(page)}: link {target!r}: no heading '
                          f'#{anchor} in {resolved.name}')
    return errors


def shell_commands(text: str) -> Iterator[List[str]]:
    """The commands of the page's shell blocks and inline code, as argv
    lists: continuation lines joined, ``&&`` chains split, comments and
    variable assignments dropped."""
    sources = [body for lang, body in FENCE.findall(text)
               if lang in SHELL_LANGS]
    sources += [code for code in INLINE_CODE.findall(FENCE.sub('', text))
                if re.match(r'(python|bash) ', code)]
    for source in sources:
        for line in source.replace('\\\n', ' ').splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # an unclosed quote: a multi-line python -c
                continue
            command: List[str] = []
            for word in words + ['&&']:
                if word in ('&&', '||', ';', '|'):
                    if command and '=' not in command[0]:
                        yield command
                    command = []
                else:
                    command.append(word)


def tool_file(word: str) -> Path:
    """The file a command's script argument names (``$MMDET/...`` in the
    installed package)."""
    for var, package in PACKAGE_VARS.items():
        if word.startswith(var + '/'):
            root = Path(importlib.import_module(package).__file__).parent
            return root / word[len(var) + 1:]
    return REPO / word


_TOOLS: Dict[Path, object] = {}


def parse_with_tool(path: Path, args: List[str]) -> str:
    """What the tool's argparse says to ``args`` ('' when they parse).

    Our tools take ``parse_args(argv)``; mmdet's and mmseg's read
    ``sys.argv``."""
    if path not in _TOOLS:
        if path.is_relative_to(REPO / 'tools'):
            _TOOLS[path] = load_tool(str(path.relative_to(REPO / 'tools')))
        else:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _TOOLS[path] = module
    parse_args = _TOOLS[path].parse_args
    stderr, argv = io.StringIO(), sys.argv
    try:
        with contextlib.redirect_stderr(stderr):
            if path.is_relative_to(REPO / 'tools'):
                parse_args(args)
            else:
                sys.argv = [str(path)] + args
                parse_args()
    except SystemExit as exit:
        if exit.code:
            return stderr.getvalue().strip().splitlines()[-1]
    finally:
        sys.argv = argv
    return ''


def command_errors(page: Path, text: str) -> List[str]:
    """A line per tool command of ``page`` whose tool is missing or whose
    arguments its argparse refuses."""
    errors = []
    for command in shell_commands(text):
        if command[0] in ('python', 'python3') and len(command) > 1:
            script, args = command[1], command[2:]
        elif command[0] == 'bash' and len(command) > 1:
            script, args = command[1], command[2:]
        else:
            continue
        if not (re.fullmatch(r'[\w$./-]+\.(py|sh)', script) and (
                script.startswith('tools/')
                or script.split('/')[0] in PACKAGE_VARS)):
            continue
        shown = ' '.join(command)
        path = tool_file(script)
        if not path.is_file():
            errors.append(f'{page_id(page)}: `{shown}`: no tool {script}')
            continue
        if script in WRAPPERS:
            script, positional = WRAPPERS[script]
            path = REPO / script
            args = args[:positional] + args[positional + 1:]
        elif path.suffix == '.sh':
            if args:
                errors.append(f'{page_id(page)}: `{shown}`: {script} takes no '
                              'arguments')
            continue
        refused = parse_with_tool(path, args)
        if refused:
            errors.append(f'{page_id(page)}: `{shown}`: {refused}')
    return errors


def config_errors(page: Path, text: str) -> List[str]:
    """A line per config path of ``page`` that does not exist."""
    errors = [f'{page_id(page)}: {path}: no such config'
              for path in CONFIG_PATH.findall(text)
              if not (REPO / path).is_file()]
    for package, path in PACKAGE_CONFIG.findall(text):
        root = Path(importlib.import_module(package).__file__).parent
        if not (root / '.mim' / 'configs' / path).is_file():
            errors.append(f'{page_id(page)}: {package}::{path}: not among '
                          f"{package}'s packaged configs")
    return errors


def stale_phrases(text: str) -> List[str]:
    return [m.group(0) for m in STALE.finditer(text)]


def python_config_blocks(text: str) -> List[str]:
    """The page's Python blocks that are configs loading the plugin."""
    return [body for lang, body in FENCE.findall(text)
            if lang == 'python' and 'custom_imports' in body]


# --- the docs as they are ------------------------------------------------


@pytest.mark.parametrize('page', PAGES, ids=page_id)
def test_links_and_images_resolve(page):
    assert link_errors(page, page.read_text()) == []


@pytest.mark.parametrize('page', PAGES, ids=page_id)
def test_tool_commands_parse(page):
    assert command_errors(page, page.read_text()) == []


@pytest.mark.parametrize('page', PAGES, ids=page_id)
def test_config_paths_exist(page):
    assert config_errors(page, page.read_text()) == []


@pytest.mark.parametrize('page', USER_PAGES, ids=page_id)
def test_no_build_log_or_stale_counts(page):
    assert stale_phrases(page.read_text()) == []


def test_every_docs_page_is_linked_from_the_readme():
    readme = (REPO / 'README.md').read_text()
    linked = {os.path.normpath(REPO / t.partition('#')[0])
              for t in LINK.findall(readme)}
    assert {str(p) for p in (REPO / 'docs').rglob('*.md')} <= linked


def test_the_docs_show_commands_to_check():
    # the parse check has something to parse on every page that shows tools
    shown = [c for p in PAGES for c in shell_commands(p.read_text())]
    assert len([c for c in shown if c[:2] == ['python', 'tools/train.py']]
               ) >= 3


@pytest.mark.parametrize('page', [p for p in PAGES if python_config_blocks(
    p.read_text())], ids=page_id)
def test_config_blocks_build_our_backbone(page, tmp_path):
    for i, block in enumerate(python_config_blocks(page.read_text())):
        path = tmp_path / f'block{i}.py'
        path.write_text(block)
        cfg = Config.fromfile(str(path))
        assert cfg.model.backbone.type == 'ResNeSt'
        base = re.search(r"(mmdet|mmseg|mmpretrain)::", block)
        scope = base.group(1) if base else 'mmdet'
        init_default_scope(scope)
        registry = importlib.import_module(f'{scope}.registry').MODELS
        if '_base_' in block:
            model = registry.build(cfg.model)
            assert type(model.backbone) is ResNeSt
            channels = cfg.model.neck.in_channels
            assert list(model.backbone.out_channels) == list(channels)
        else:
            assert type(registry.build(cfg.model.backbone)) is ResNeSt


# --- each check fails where it should --------------------------------------


def page_with(tmp_path: Path, text: str) -> Tuple[Path, str]:
    page = tmp_path / 'docs' / 'page.md'
    page.parent.mkdir(exist_ok=True)
    (tmp_path / 'docs' / 'other.md').write_text('# Other\n\n## A section\n')
    page.write_text(text)
    return page, text


def test_a_broken_link_and_image_are_reported(tmp_path):
    page, text = page_with(tmp_path, (
        'See [other](other.md), [a section](other.md#a-section) and '
        '[this](#title).\n\n# Title\n\n[gone](gone.md), ![pic](../pic.png), '
        '[bad anchor](other.md#no-section), `[code](not/a/link.md)`\n'))
    errors = link_errors(page, text)
    assert len(errors) == 3, errors
    assert "link 'gone.md': no such file" in errors[0]
    assert "link '../pic.png': no such file" in errors[1]
    assert "no heading #no-section in other.md" in errors[2]


def test_a_renamed_flag_is_reported(tmp_path):
    page, text = page_with(tmp_path, (
        '```bash\npython tools/train.py configs/faster_rcnn_resnest50_fpn.py '
        '--work_dir x\npython tools/analysis_tools/cost_table.py '
        '--update-docs \\\n    --skip-speed\n```\n\nInline: '
        '`python tools/test.py CONFIG CKPT --backbone-precision int4`.\n'))
    errors = command_errors(page, text)
    assert len(errors) == 2, errors
    assert 'tools/train.py' in errors[0]
    assert 'unrecognized arguments: --work_dir' in errors[0]
    assert "invalid choice: 'int4'" in errors[1]


def test_a_missing_tool_and_wrapper_flags_are_reported(tmp_path):
    page, text = page_with(tmp_path, (
        '```bash\nbash tools/install.sh && python tools/misc/make_data.py\n'
        'bash tools/dist_train.sh configs/x.py 8 --resume --amp\n'
        'bash tools/dist_test.sh configs/x.py ckpt.pth 8 --tta --amp\n'
        'MMDET=$(python -c "import mmdet")\n'
        'python $MMDET/.mim/tools/analysis_tools/get_flops.py cfg.py '
        '--num-images 1 --shape 3\n```\n'))
    errors = command_errors(page, text)
    assert len(errors) == 3, errors
    assert 'no tool tools/misc/make_data.py' in errors[0]
    assert 'unrecognized arguments: --amp' in errors[1]  # test.py has none
    assert 'get_flops.py' in errors[2] and '--shape' in errors[2]


def test_a_missing_config_is_reported(tmp_path):
    page, text = page_with(tmp_path, (
        'Run `configs/faster_rcnn_resnest50_fpn.py`, then '
        'configs/faster_rcnn_resnest77_fpn.py on top of '
        "'mmdet::faster_rcnn/faster-rcnn_r77_fpn_1x_coco.py'.\n"))
    assert config_errors(page, text) == [
        'page.md: configs/faster_rcnn_resnest77_fpn.py: no such config',
        "page.md: mmdet::faster_rcnn/faster-rcnn_r77_fpn_1x_coco.py: not "
        "among mmdet's packaged configs"]


def test_stale_numbers_and_build_log_are_reported():
    assert stale_phrases('The suite: 595 tests, 6 min. Today it is faster; '
                         'tried and dropped.') == ['595 tests', 'Today',
                                                   'tried and']
