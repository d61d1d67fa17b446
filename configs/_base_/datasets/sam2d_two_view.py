# The two-view pipeline of the 2D SAM (radiographs), shared by the sam2d_* configs: SAM's view
# sampling (Yan et al., "SAM: Self-supervised learning of pixel-wise anatomical embeddings in
# radiological images", IEEE TMI 2022, arXiv:2012.02383) in the plane of the image.
#
# A radiograph becomes a one-slice volume (ToPlanarVolume; finer images are first averaged down
# to 0.8 x the view spacing, the finest view spacing, so the bilinear views do not alias). Two
# views: scale s ~ U(0.8, 1.2) per view, box ceil(patch * s * 1.05) pixels, overlap with
# p = 0.8 around a common seed point, an in-plane rotation U(-10, 10) degrees per view (patient
# position; mmanat's choice, the 3D recipe has none), one bilinear resampling to
# `spacing` * s mm, exact world-coordinate maps. Then the X-ray intensity rule of inference
# (normalize_intensity(arr, 'XR'): the image's 0.2 / 99.8 percentiles -> [0, 255] - 50) and
# independent per-view exposure / contrast / blur / noise changes. Patch size in (z, y, x).
view_crop_2d = dict(type='RandomTwoViewCrop', patch_size=(1, 256, 256), spacing=1.0,
                    scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=0.8,
                    seed_margin=(0, 20, 20), rotation_range=(0.0, 0.0, 10.0))
to_planar = dict(type='ToPlanarVolume', resample_to=0.8)
view_normalize_xr = dict(type='NormalizeViewIntensity', modality='XR')
# moderate: gamma 0.7-1.4, contrast x 0.75-1.25, brightness +-0.1 (of the 0-1 range), blur
# 0-2 mm, noise std 0-0.03; no inversion (read_xray returns dark air)
xray_augment = dict(type='RandomXrayViewIntensity', gamma_range=(0.7, 1.4), gamma_prob=0.8,
                    brightness_range=(-0.1, 0.1), contrast_range=(0.75, 1.25),
                    jitter_prob=0.8, blur_sigma_mm=(0.0, 2.0), blur_prob=0.5,
                    noise_std=(0.0, 0.03), noise_prob=0.5, invert_prob=0.0)
# strong: for a handful of real radiographs repeated many times
xray_augment_strong = dict(xray_augment, gamma_range=(0.6, 1.7), gamma_prob=1.0,
                           brightness_range=(-0.15, 0.15), contrast_range=(0.65, 1.4),
                           jitter_prob=1.0, blur_sigma_mm=(0.0, 3.0), noise_std=(0.0, 0.05))
two_view_pipeline_2d = [to_planar, view_crop_2d, view_normalize_xr, xray_augment,
                        dict(type='PackSAMInputs')]

# as sam_two_view.py: infinite shuffled sampling, samples kept as a list
two_view_loader = dict(
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'))
