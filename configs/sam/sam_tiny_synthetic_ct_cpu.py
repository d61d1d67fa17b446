# The recipe of the shipped SAM checkpoint (checkpoints/sam_default.pth): SAM-tiny on synthetic
# subjects generated on the fly plus the real sample CTs (lung1, lung2), preprocessed once:
#
#   python tools/fetch_sample_data.py
#   printf 'image,label,modality\nct/lung1.nrrd,ct/lung1_label.nrrd,CT\nct/lung2.nrrd,ct/lung2_label.nrrd,CT\n' > ct.csv
#   python tools/preprocess.py ct.csv --data-root data/samples --out data/ct_cache_samples
#   python tools/train.py configs/sam/sam_tiny_synthetic_ct_cpu.py
#
# The two real volumes are repeated so that about one pair in six comes from a real scan.
_base_ = ['./sam_tiny_synthetic_cpu.py']

view_pipeline = [
    dict(type='RandomTwoViewCrop', patch_size=(32, 96, 96), spacing=2.0,
         scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=0.8, seed_margin=(4, 10, 10),
         rotation_range=0.0),
    dict(type='NormalizeViewIntensity'),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
    dict(type='PackSAMInputs'),
]
real_ct = dict(
    type='RepeatDataset',
    times=100,
    dataset=dict(type='VolumeListDataset', data_root='data/ct_cache_samples', ann_file='',
                 modality='CT', pipeline=[dict(type='LoadVolume')] + view_pipeline))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type', 'modality'],
        datasets=[
            dict(type='SyntheticSubjectDataset', num_subjects=1000, base_seed=0,
                 modalities=('CT', ), spacing=2.0, pipeline=view_pipeline),
            real_ct,
        ]))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000)
