# The test loader shared by the pair test sets (landmark pairs, lesion pairs): one pair per
# step, in order; items kept whole (pseudo_collate would transpose the per-item lists of point
# names). A test-set base adds `dataset`, `test_evaluator` and `test_cfg`.
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='mmanat_pair_collate'))
