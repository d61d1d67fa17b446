"""Every config under configs/ parses and its model builds; the data parts of the small CPU
configs build too (datasets are lazy: nothing is rendered here); the metafiles list every
config and every shipped checkpoint."""
import glob
import json
import os.path as osp

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmanat.registry import DATASETS, MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
SAM_CPU = 'sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py'
SAM2D_CPU = 'sam/sam2d_tiny-fpn_1xb4-cpu-300it_synthetic-cxr.py'
UAE_M_INTRA = 'sam/uae-m-intra_r18-fpn3d_1xb2-20k_synthetic-ct-mr.py'
UAE_M_INTRA_CPU = 'sam/uae-m-intra_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py'
UAE_M_INTER_CPU = 'sam/uae-m-inter_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py'
UAE_S_CPU = 'sam/uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct.py'
ADAM_CPU = 'adam/adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py'
MOCO_CPU = 'adam/mocov2_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py'
LINEAR_CPU = 'adam/benchmarks/r18half_adam-pre_1xb16-linear-cpu-300it_synthetic-cxr-64px.py'
FT_CPU = 'adam/benchmarks/r18half_adam-pre_1xb16-ft-cpu-300it_synthetic-cxr-64px.py'
# short names users type for the reference recipes -> the config they stand for
SHORT_NAMES = {
    'sam/uae_s.py': 'sam/uae-s_r18-fpn3d_8xb5-20k_synthetic-ct.py',
    'sam/uae_m.py': 'sam/uae-m-inter_r18-fpn3d_1xb1-20k_synthetic-ct-mr.py',
    'adam/adam_r50_cxr.py': 'adam/adam_r50-mlp_8xb32-3x200e_cxr14.py',
}
METAFILES = ('configs/sam/metafile.yml', 'configs/adam/metafile.yml')


def load(rel):
    return Config.fromfile(osp.join(ROOT, 'configs', rel))


@pytest.fixture(autouse=True)
def mmanat_scope():
    init_default_scope('mmanat')


def test_there_are_configs():
    names = {osp.relpath(p, osp.join(ROOT, 'configs')) for p in CONFIGS}
    for must in (*SHORT_NAMES, *SHORT_NAMES.values(), SAM_CPU, UAE_M_INTRA, LINEAR_CPU, FT_CPU,
                 'sam/uae-m-inter_tiny-fpn3d_1xb2-cpu-150it_registered-ct-mr.py'):
        assert must in names, must


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_parses_and_model_builds(path):
    cfg = Config.fromfile(path)
    assert 'model' in cfg and 'train_dataloader' in cfg
    model_cfg = cfg.model.copy()
    model_cfg.pop('pretrained', None)  # classifier configs point at a checkpoint
    model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize('short', sorted(SHORT_NAMES))
def test_short_names_are_the_reference_recipes(short):
    assert load(short).to_dict() == load(SHORT_NAMES[short]).to_dict()


@pytest.mark.parametrize('name', [SAM_CPU, UAE_M_INTRA, 'sam/uae_m.py', UAE_M_INTRA_CPU,
                                  UAE_M_INTER_CPU, ADAM_CPU, MOCO_CPU, LINEAR_CPU, FT_CPU,
                                  SAM2D_CPU])
def test_synthetic_datasets_build(name):
    cfg = load(name)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(ds) > 0


def test_reference_numbers_of_uae_m():
    intra = load(UAE_M_INTRA)
    ds = intra.train_dataloader.dataset
    assert tuple(ds.modalities) == ('CT', 'MR') and tuple(ds.modality_probs) == (0.6, 0.4)
    shift = [t for t in ds.pipeline if t['type'] == 'RandHistogramShift'][0]
    assert shift['prob'] == 0.9 and tuple(shift['num_control_points']) == (5, 15)
    assert shift['invert_prob'] == 0.3 and shift['rescale_prob'] == 0.3
    crop = ds.pipeline[0]
    assert crop['type'] == 'RandomTwoViewCrop' and crop['rotation_range'] == 5.0
    inter = load('sam/uae_m.py')
    crop = inter.train_dataloader.dataset.pipeline[0]
    assert crop['type'] == 'RandomInterModalityCrop'
    assert tuple(crop['patch_size']) == (104, 128, 128) and crop['jitter'] == 10
    tiny = load(UAE_M_INTER_CPU).train_dataloader.dataset
    assert tuple(tiny.pipeline[0]['patch_size']) == (48, 64, 64) and tiny.spacing == 4.0


def _two_view_crops(cfg):
    """Every RandomTwoViewCrop step reachable from a config's training dataset."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get('type') == 'RandomTwoViewCrop':
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(cfg.train_dataloader.to_dict())
    return found


@pytest.mark.parametrize('path', [p for p in CONFIGS if '/sam/' in p],
                         ids=lambda p: osp.basename(p))
def test_sam_family_shares_the_two_view_crop(path):
    shared = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'datasets', 'sam_two_view.py')).view_crop.to_dict()
    crops = _two_view_crops(Config.fromfile(path))
    if 'uae-m-inter' in path or path.endswith('uae_m.py'):
        assert crops == []  # stage 2 crops the same region of a CT/MR pair instead
        return
    assert crops, 'no two-view crop in the training data'
    if osp.basename(path).startswith('sam2d'):  # radiographs: the in-plane crop of 2D SAM
        shared2d = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets',
                                            'sam2d_two_view.py')).view_crop_2d.to_dict()
        sized = ('patch_size', 'spacing', 'seed_margin')  # the scale of the model
        for crop in crops:
            assert crop['patch_size'][0] == 1
            assert {k: v for k, v in crop.items() if k not in sized} == {
                k: v for k, v in shared2d.items() if k not in sized}
        return
    rotation = 5.0 if 'uae-m-intra' in path else 0.0
    for crop in crops:
        assert crop == dict(shared, rotation_range=rotation)


@pytest.mark.parametrize('name', [SAM_CPU, UAE_M_INTRA_CPU, UAE_S_CPU])
def test_cpu_recipes_share_the_cpu_schedule(name):
    cfg = load(name)
    assert cfg.train_cfg.max_iters == 300 and cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.param_scheduler[0]['end'] == 20 and cfg.optim_wrapper.optimizer.lr == 0.02
    assert cfg.default_hooks.checkpoint.interval == 100


@pytest.mark.parametrize('name', [SAM_CPU, 'sam/uae_s.py', 'sam/uae_m.py', UAE_S_CPU])
def test_sam_family_configs_can_be_tested(name):
    """tools/test.py needs a test loop, loader and metric in the config."""
    cfg = load(name)
    assert cfg.test_cfg.type == 'LandmarkTestLoop'
    assert cfg.test_evaluator.type == 'LandmarkMetric'
    assert cfg.test_dataloader.dataset.type == 'SyntheticLandmarkPairDataset'


def test_label_fraction_of_linear_probe():
    cfg = load(LINEAR_CPU)
    cfg.merge_from_dict({'train_dataloader.dataset.label_fraction': 0.01})
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(ds) == 4  # 1 % of 400 subjects
    assert cfg.model.frozen_backbone is True
    assert load(FT_CPU).model.frozen_backbone is False


def _metafile_models():
    index = yaml.safe_load(open(osp.join(ROOT, 'model-index.yml')))
    assert sorted(index['Import']) == sorted(METAFILES)
    models, collections = [], set()
    for rel in index['Import']:
        meta = yaml.safe_load(open(osp.join(ROOT, rel)))
        names = {c['Name'] for c in meta['Collections']}
        for c in meta['Collections']:
            assert osp.isfile(osp.join(ROOT, c['README'])), c['README']
            assert c['Paper']['URL'].startswith('https://arxiv.org/abs/'), c['Name']
        collections |= names
        for model in meta['Models']:
            assert model['In Collection'] in names, (rel, model['Name'])
            models.append(model)
    return models, collections


def test_metafiles_name_existing_configs():
    models, _ = _metafile_models()
    names = [m['Name'] for m in models]
    assert len(names) == len(set(names))
    for model in models:
        config = osp.join(ROOT, model['Config'])
        assert osp.isfile(config), model['Config']
        assert model['Name'] == osp.splitext(osp.basename(config))[0]
        assert 'model' in Config.fromfile(config)
        if model['Weights'] is not None:
            assert osp.isfile(osp.join(ROOT, model['Weights'])), model['Weights']
        for result in model['Results'] or []:
            assert result['Metrics'] and all('(' in key for key in result['Metrics']), \
                f'{model["Name"]}: every metric names its unit in parentheses'
    # every long-named config is in a metafile (the short names stand for listed ones)
    listed = {m['Config'] for m in models}
    for path in CONFIGS:
        rel = osp.relpath(path, ROOT)
        if osp.relpath(path, osp.join(ROOT, 'configs')) not in SHORT_NAMES:
            assert rel in listed, f'{rel} is not in a metafile'


def test_every_shipped_checkpoint_is_in_a_metafile():
    models, _ = _metafile_models()
    weights = {m['Weights']: m['Config'] for m in models if m['Weights']}
    with open(osp.join(ROOT, 'checkpoints', 'model_zoo.json')) as f:
        zoo = json.load(f)
    assert zoo
    for name, entry in zoo.items():
        key = f'checkpoints/{name}'
        assert key in weights, f'{key} is not the Weights of any metafile model'
        assert weights[key] == entry['config'], key
