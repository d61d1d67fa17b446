# 2D SAM two-view training data from synthetic chest radiographs rendered on the fly
# (SyntheticRadiographDataset: synthetic torso subjects of varied anatomy projected PA-like;
# no files needed). Views at 2 mm pixels for the CPU models (sam2d_tiny.py): 128 x 128 pixels
# = 205-307 mm of a ~400 mm field. Variety beyond the anatomy comes from the pipeline: field
# of view and patient position (random box scale, place and in-plane rotation per view),
# exposure and detector (gamma, brightness, contrast, blur, noise per view).
#
# The first run renders each subject once into data/synthetic_xray_cache (about 1 s per
# subject); later runs read the .npz files.
_base_ = ['./sam2d_two_view.py']

view_crop_2d_2mm = dict(_base_.view_crop_2d, patch_size=(1, 128, 128), spacing=2.0,
                        seed_margin=(0, 10, 10))
to_planar_2mm = dict(_base_.to_planar, resample_to=1.6)
two_view_pipeline_2d_2mm = [to_planar_2mm, view_crop_2d_2mm, _base_.view_normalize_xr,
                            _base_.xray_augment, dict(type='PackSAMInputs')]
# the same with the strong intensity changes (a few real radiographs repeated many times)
two_view_pipeline_2d_2mm_strong = [to_planar_2mm, view_crop_2d_2mm, _base_.view_normalize_xr,
                                   _base_.xray_augment_strong, dict(type='PackSAMInputs')]

synthetic_cxr = dict(
    type='SyntheticRadiographDataset',
    num_samples=200,
    base_seed=50000,  # away from the seeds of the test / benchmark subjects
    spacing=3.0,  # mm voxels of the projected synthetic CT
    img_size=256,  # ~1.7 mm pixels over the square field
    z_range=(300.0, 700.0),
    cache_images=True,
    cache_dir='data/synthetic_xray_cache',
    pipeline=two_view_pipeline_2d_2mm)
train_dataloader = dict(_base_.two_view_loader, batch_size=4, dataset=synthetic_cxr)
