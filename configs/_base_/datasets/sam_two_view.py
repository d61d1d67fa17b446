# The two-view pipeline of SAM (Yan et al., "SAM: Self-supervised learning of pixel-wise
# anatomical embeddings in radiological images", IEEE TMI 2022, arXiv:2012.02383), shared by
# every SAM-family dataset config. A config that differs copies a step and overrides the
# fields that differ, e.g. dict(_base_.view_crop, rotation_range=5.0).
#
# Two views of one volume: scale s ~ U(0.8, 1.2) per view, crop box ceil(patch * s * 1.05)
# 2-mm voxels, overlap with p = 0.8 around a common seed point, resampled once to 2 mm * s,
# with exact world-coordinate maps. Patch size in (z, y, x) voxels.
view_crop = dict(type='RandomTwoViewCrop', patch_size=(32, 96, 96), spacing=2.0,
                 scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=0.8,
                 seed_margin=(4, 10, 10), rotation_range=0.0)
# CT: [-1024, 3071] HU -> [0, 255] - 50; MR: volume 0.2/99.8 percentiles
view_normalize = dict(type='NormalizeViewIntensity')
# Gaussian blur (sigma in mm) and additive noise, each with p = 0.5: stronger than the
# released recipe (below); the tiny/synthetic CPU configs use it
view_augment = dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
                    noise_prob=0.5, noise_std=(0.0, 4.0))
# The released intensity augmentation (alibaba-damo-academy/self-supervised-anatomical-
# embedding-v2, view pipelines of configs/sam/sam_NIHLN.py, transforms in
# sam/datasets/piplines/process3d.py): after RescaleIntensity, RandomNoise3d =
# torchio.RandomNoise(std=(0, 0.001)) on every view (noise std ~ U(0, 0.001) on the
# [-50, 205] scale: practically no augmentation); RandomBlur3d is commented out there.
view_augment_released = dict(type='RandomIntensityAugment', blur_prob=0.0, noise_prob=1.0,
                             noise_std=(0.0, 0.001), noise_first=True)
# configs/sam/sam_deeplesion.py of the same repository also blurs every view after the noise:
# torchio.RandomBlur(std=(0, 4)), one sigma ~ U(0, 4) mm per axis, 'reflect' border
view_augment_released_blur = dict(type='RandomIntensityAugment', blur_prob=1.0,
                                  blur_sigma_mm=(0.0, 4.0), blur_per_axis=True,
                                  blur_mode='reflect', noise_prob=1.0,
                                  noise_std=(0.0, 0.001), noise_first=True)
# the intensity steps alone (UAE-S applies them to each subject of an inter-subject pair)
view_intensity_pipeline = [view_normalize, view_augment]
# for items that already hold a MedicalImage (synthetic subjects); prepend
# dict(type='LoadVolume') for files
two_view_pipeline = [view_crop, view_normalize, view_augment, dict(type='PackSAMInputs')]
# the same with the released intensity augmentation (sam_NIHLN.py)
two_view_pipeline_released = [view_crop, view_normalize, view_augment_released,
                              dict(type='PackSAMInputs')]

# the data loader of the two-view datasets (a dataset config adds batch_size and dataset):
# infinite shuffled sampling, samples kept as a list (SAMDataPreprocessor stacks them)
two_view_loader = dict(
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'))
