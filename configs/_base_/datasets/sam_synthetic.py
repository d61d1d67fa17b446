# SAM two-view training data from synthetic subjects generated on the fly (no files needed).
# Each item of SyntheticSubjectDataset is a results dict with 'image' (MedicalImage, CT- or
# MR-like), 'label', 'modality', 'landmarks', 'subject_id'; the two-view pipeline is the one
# used for real volumes (sam_two_view.py), without LoadVolume.
_base_ = ['./sam_two_view.py']

train_dataloader = dict(
    _base_.two_view_loader,
    batch_size=2,
    dataset=dict(
        type='SyntheticSubjectDataset',
        num_subjects=1000,  # item i = subject of seed base_seed + i (about 1 s each)
        base_seed=0,
        modalities=('CT', ),
        spacing=2.0,
        pipeline=_base_.two_view_pipeline))
