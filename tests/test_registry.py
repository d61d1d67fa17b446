"""Registry wiring: lazy locations, cross-scope mmdet types, register_all_modules."""
import subprocess
import sys
import textwrap

import pytest
import torch

from mmanat.registry import DATASETS, MODELS, TRANSFORMS


def test_registries_are_children_of_mmengine_root():
    from mmengine.registry import MODELS as ROOT_MODELS
    assert MODELS.scope == 'mmanat'
    assert MODELS.parent is ROOT_MODELS
    assert ROOT_MODELS.children['mmanat'] is MODELS
    assert DATASETS.scope == TRANSFORMS.scope == 'mmanat'


def test_cross_scope_mmdet_resnet_and_fpn():
    pytest.importorskip('mmcv._ext', reason='mmdet.models needs the compiled mmcv ops')
    resnet = MODELS.build(dict(type='mmdet.ResNet', depth=18, out_indices=(0, 1, 2, 3)))
    fpn = MODELS.build(dict(type='mmdet.FPN', in_channels=[64, 128, 256, 512],
                            out_channels=32, num_outs=4))
    feats = resnet(torch.zeros(1, 3, 64, 64))
    outs = fpn(feats)
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert type(resnet).__module__.startswith('mmdet.')


def test_register_all_modules_sets_default_scope():
    from mmengine.registry import DefaultScope

    from mmanat.utils import register_all_modules
    register_all_modules()
    assert DefaultScope.get_current_instance().scope_name == 'mmanat'


BLOCK_EXT = textwrap.dedent('''
    import importlib.abc, sys
    class _BlockCompiledOps(importlib.abc.MetaPathFinder):
        """Make mmcv behave like mmcv-lite: its compiled extension cannot be imported."""
        def find_spec(self, name, path=None, target=None):
            if name == 'mmcv._ext' or name.startswith('mmcv._ext.'):
                raise ImportError('mmcv._ext blocked for this test (mmcv-lite)')
            return None
    sys.meta_path.insert(0, _BlockCompiledOps())
''')


def _run(code):
    return subprocess.run([sys.executable, '-c', BLOCK_EXT + textwrap.dedent(code)],
                          capture_output=True, encoding='utf-8', errors='replace', timeout=300)


def test_import_is_cheap_and_works_without_compiled_ops():
    proc = _run('''
        import sys
        import mmanat, mmanat.registry, mmanat.structures
        assert 'mmdet.models' not in sys.modules, 'import mmanat pulled in mmdet.models'
        assert 'mmcv._ext' not in sys.modules
        try:
            import mmcv._ext
        except ImportError:
            print('BLOCKED-OK')
    ''')
    assert proc.returncode == 0, proc.stderr
    assert 'BLOCKED-OK' in proc.stdout
