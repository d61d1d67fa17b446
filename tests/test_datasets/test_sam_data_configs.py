"""The SAM dataset config fragments build and yield packed two-view samples."""
import os.path as osp

import numpy as np
import SimpleITK as sitk
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmanat.registry import DATASETS

CFG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets')


def test_ct_folder_config(tmp_path):
    arr = np.full((20, 40, 40), -1000, np.int16)
    arr[:, 8:32, 6:34] = 40
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((3.0, 3.0, 4.0))
    sitk.WriteImage(img, str(tmp_path / 'ct.nii.gz'))
    cfg = Config.fromfile(osp.join(CFG_DIR, 'sam_ct_folder.py'))
    loader = cfg.train_dataloader
    assert loader.collate_fn.type == 'pseudo_collate' and loader.persistent_workers
    assert loader.sampler.type == 'InfiniteSampler' and loader.sampler.shuffle
    loader.dataset.data_root = str(tmp_path)
    loader.dataset.modality = 'CT'
    ds = DATASETS.build(loader.dataset)
    np.random.seed(1)
    item = ds[0]
    assert item['inputs'].shape == (2, 1, 32, 96, 96)
    assert item['data_samples']['coords'].shape == (2, 3, 32, 96, 96)
    valid = item['data_samples']['valid']
    assert valid.any() and not valid.all()  # 120x120x80 mm volume: views are padded
    air = item['inputs'][:, 0][~valid]
    assert float(air.mean()) < -40  # padding = normalised air (-50) plus mild noise


def test_synthetic_config():
    cfg = Config.fromfile(osp.join(CFG_DIR, 'sam_synthetic.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.num_subjects = 2
    with DefaultScope.overwrite_default_scope('mmanat'):  # as under a Runner
        ds = DATASETS.build(ds_cfg)
    np.random.seed(0)
    item = ds[1]
    assert item['inputs'].shape == (2, 1, 32, 96, 96)
    ds_meta = item['data_samples']['meta']
    assert ds_meta['modality'] == 'CT' and ds_meta['subject_id'].startswith('synthetic_')
    coords = item['data_samples']['coords']
    assert coords.shape == (2, 3, 32, 96, 96) and item['data_samples']['valid'].float().mean() > 0.3


def test_dataset_configs_share_the_two_view_pipeline():
    """The CT-folder and synthetic fragments differ by LoadVolume and the intensity
    augmentation (the CT folder takes the released one of
    alibaba-damo-academy/self-supervised-anatomical-embedding-v2 configs/sam/sam_NIHLN.py);
    UAE-S reuses the views and their intensity steps."""
    syn = Config.fromfile(osp.join(CFG_DIR, 'sam_synthetic.py')).train_dataloader
    ct = Config.fromfile(osp.join(CFG_DIR, 'sam_ct_folder.py')).train_dataloader
    pipeline = ct.dataset.pipeline
    assert pipeline[0]['type'] == 'LoadVolume'
    assert [t['type'] for t in pipeline[1:]] == [
        'RandomTwoViewCrop', 'NormalizeViewIntensity', 'RandomIntensityAugment', 'PackSAMInputs']
    for i in (1, 2, 4):
        assert pipeline[i] == syn.dataset.pipeline[i - 1]
    assert pipeline[3] != syn.dataset.pipeline[2]
    assert (ct.batch_size, ct.num_workers, syn.batch_size) == (6, 4, 2)
    uae_s = Config.fromfile(osp.join(CFG_DIR, 'uae_s_ct_folder.py')).train_dataloader
    intra, inter = uae_s.dataset.datasets
    assert intra.pipeline[1:] == syn.dataset.pipeline and intra.modality == 'CT'
    assert inter.type == 'CrossSubjectPairDataset' and tuple(inter.crop_size) == (120, 180, 180)
    assert inter.source.type == 'VolumeListDataset' and inter.source.ann_file == 'labels.csv'
    assert inter.view_pipeline == syn.dataset.pipeline[1:3]
    assert uae_s.batch_sampler.type == 'MixedBatchSampler' and uae_s.batch_size == 5
