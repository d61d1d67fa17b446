"""tools/extract_eve.py on Adam v2: the Eve embeddings come from the teacher backbone of an
AdamV2 checkpoint (whole images and patches around points)."""
import os.path as osp

import numpy as np
import torch

from mmanat.cli import extract_eve
from tests.helpers.adam_tiny import write_pngs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
V2_CPU = osp.join(ROOT, 'configs', 'adam',
                  'adamv2_r18half-dino_1xb8-cpu-300it_synthetic-cxr-64px.py')


def test_extract_eve_uses_the_v2_teacher(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmanat.registry import MODELS
    init_default_scope('mmanat')
    cfg = Config.fromfile(V2_CPU)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():  # student and teacher differ, as after training
        for p in model.student_backbone.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ckpt = tmp_path / 'adamv2.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(cfg=cfg.pretty_text)), ckpt)
    imgs = write_pngs(tmp_path / 'imgs', n=2, size=64)
    pngs = [osp.join(imgs, f'img_{i:03d}.png') for i in range(2)]
    out = tmp_path / 'eve.npz'
    assert extract_eve.main(['--checkpoint', str(ckpt), *pngs, '--out', str(out),
                             '--no-progress', '--device', 'cpu']) == 0
    with np.load(out) as z:
        emb = z['embeddings']
    assert emb.shape == (2, 256)
    from mmanat.fileio import read_xray
    from mmanat.datasets.radiograph_dataset import to_unit_range
    model.eval()
    x = torch.stack([torch.from_numpy(to_unit_range(read_xray(p).array)).float()[None]
                     for p in pngs])
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model.backbone(((x - 0.5) / 0.25))[-1].mean(
            dim=(2, 3)), dim=1).numpy()
        stu = torch.nn.functional.normalize(model.student_backbone(((x - 0.5) / 0.25))[-1].mean(
            dim=(2, 3)), dim=1).numpy()
    np.testing.assert_allclose(emb, ref, atol=1e-4)
    assert not np.allclose(emb, stu, atol=1e-3)
    pts = tmp_path / 'pts.csv'
    pts.write_text('name,column,row\na,20,20\nb,40,30\n')
    out2 = tmp_path / 'patches.npz'
    assert extract_eve.main(['--checkpoint', str(ckpt), pngs[0], '--points', str(pts),
                             '--patch-size', '24', '--out', str(out2), '--no-progress',
                             '--device', 'cpu']) == 0
    with np.load(out2) as z:
        assert z['embeddings'].shape == (2, 256)
