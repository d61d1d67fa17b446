# UAE-S training data (Bai et al., "UAE: Universal anatomical embedding on multi-modality
# medical images", 2023, arXiv:2311.15111) from synthetic subjects generated on the fly (no
# files needed). Each batch (per GPU) = 4 intra-volume view pairs (the SAM two-view pipeline)
# + 1 inter-subject pair (two different subjects with organ label maps, random
# (120, 180, 180) (z, y, x) crops at 2 mm), mixed by MixedBatchSampler; UAESDataPreprocessor
# batches the two kinds apart and UAES uses one of them per iteration.
_base_ = ['./sam_two_view.py']

subject_spacing = 2.0     # mm; synthetic subjects are 352 x 288 x 320 mm
num_subjects = 1000       # seeds 0..999 (evaluate on other seeds)

synthetic_subjects = dict(type='SyntheticSubjectDataset', num_subjects=num_subjects,
                          base_seed=0, modalities=('CT', ), spacing=subject_spacing)

train_dataloader = dict(
    batch_size=5,                 # per GPU: 4 intra + 1 inter pair
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),      # mmengine needs one
    batch_sampler=dict(type='MixedBatchSampler', num_inter=1),
    # keeps samples whole: pseudo_collate would merge intra and inter samples' dicts
    collate_fn=dict(type='mmanat_pair_collate'),
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(synthetic_subjects, pipeline=_base_.two_view_pipeline),
            # each subject of a pair is cropped, then normalised and augmented like a view
            dict(type='CrossSubjectPairDataset', source=synthetic_subjects,
                 crop_size=(120, 180, 180), spacing=2.0,
                 view_pipeline=_base_.view_intensity_pipeline,
                 pipeline=[dict(type='PackSAMInputs')]),
        ]))
