# UAE-S training data from your own CTs: intra-volume view pairs from every CT of `ann_file`
# (or of the tools/preprocess.py cache in data_root) and inter-subject pairs from the CTs that
# have an organ label map (TotalSegmentator-style: one integer id per structure, the same id
# meaning the same structure in every scan, 0 = background), listed in `label_ann_file`, a CSV
# with columns image,label[,modality] relative to data_root. Different rows of that CSV must be
# different patients.
#
#   tools/dist_train.sh configs/sam/uae-s_r18-fpn3d_8xb5-20k_ct-2mm.py 8 --cfg-options \
#       train_dataloader.dataset.datasets.0.data_root=data/ct_cache \
#       train_dataloader.dataset.datasets.1.source.data_root=data/ct_labelled \
#       train_dataloader.dataset.datasets.1.source.ann_file=labels.csv
_base_ = ['./uae_s_synthetic.py']

data_root = 'data/ct_cache'
ann_file = ''
label_data_root = 'data/ct_labelled'
label_ann_file = 'labels.csv'

# the synthetic batches of uae_s_synthetic.py with the two datasets read from files
train_dataloader = dict(
    dataset=dict(
        datasets=[
            dict(type='VolumeListDataset', data_root=data_root, ann_file=ann_file,
                 modality='CT', pipeline=[dict(type='LoadVolume')] + _base_.two_view_pipeline),
            # items without a pipeline are read by LoadVolume(with_label=True) inside
            dict(_base_.train_dataloader.dataset.datasets[1],
                 source=dict(type='VolumeListDataset', data_root=label_data_root,
                             ann_file=label_ann_file, modality='CT')),
        ]))
