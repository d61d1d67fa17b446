"""Adam (MoCo v2 + queue + pruner switch): queue/pointer updates, momentum encoder, modes,
and the queue surviving stage changes driven by AnatomyStageHook."""
import os.path as osp
import sys

import torch

from tests.helpers.adam_tiny import register_recorder, tiny_cfg, write_pngs  # noqa: E402


def build_tiny(queue_len=10, momentum=0.9):
    from mmanat.registry import MODELS
    from mmanat.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = tiny_cfg('unused', 'unused')['model']
    cfg.update(queue_len=queue_len, momentum=momentum)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=[torch.randn(2, 1, 32, 32, generator=g) for _ in range(n)],
                data_samples=None)


def test_enqueue_pointer_wraps():
    model = build_tiny(queue_len=10)
    keys = [torch.nn.functional.normalize(torch.randn(4, 16), dim=1) for _ in range(3)]
    model.enqueue(keys[0])
    assert model.queue_ptr.item() == 4
    torch.testing.assert_close(model.queue[:4], keys[0])
    model.enqueue(keys[1])
    model.enqueue(keys[2])
    assert model.queue_ptr.item() == 2  # 12 % 10
    torch.testing.assert_close(model.queue[8:10], keys[2][:2])
    torch.testing.assert_close(model.queue[0:2], keys[2][2:])
    torch.testing.assert_close(model.queue[4:8], keys[1])
    # buffers travel with the state dict (checkpoints carry them)
    sd = model.state_dict()
    assert 'queue' in sd and 'queue_ptr' in sd


def test_train_steps_update_queue_momentum_encoder():
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    model = build_tiny(queue_len=10, momentum=0.9)
    q_param = lambda: model.backbone.conv1.weight.detach().clone()  # noqa: E731
    k_param = lambda: model.momentum_backbone.conv1.weight.detach().clone()  # noqa: E731
    torch.testing.assert_close(q_param(), k_param())  # key encoder starts as a copy
    assert not any(p.requires_grad for p in model.momentum_backbone.parameters())
    ow = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9))
    model.train()
    q0 = q_param()
    logs = model.train_step(batch(seed=1), ow)
    assert torch.isfinite(logs['loss'])
    q1 = q_param()
    assert not torch.equal(q0, q1)
    torch.testing.assert_close(k_param(), q0)  # 0.9 q0 + 0.1 q0
    model.train_step(batch(seed=2), ow)
    torch.testing.assert_close(k_param(), 0.9 * q0 + 0.1 * q1)
    model.train_step(batch(seed=3), ow)
    assert model.queue_ptr.item() == 2  # 3 x 4 keys in a queue of 10
    torch.testing.assert_close(model.queue.norm(dim=1), torch.ones(10))
    # evaluation-mode loss and feature extraction leave the queue alone
    model.eval()
    before = model.queue.clone()
    with torch.no_grad():
        model(torch.stack(batch(seed=4)['inputs']), mode='loss')
        feats = model(torch.randn(3, 1, 32, 32), mode='tensor')
    assert torch.equal(before, model.queue) and model.queue_ptr.item() == 2
    assert feats.shape == (3, 32)
    # the pruner switch changes the loss once bank keys pass the threshold
    model.prune = True
    model.loss_module.prune_threshold = -1.0
    with torch.no_grad():
        out = model(torch.stack(batch(seed=4)['inputs']), mode='loss')
    assert abs(out['loss'].item()) < 1e-6 and out['pruned_frac'].item() == 1.0


def test_queue_and_pointer_survive_stage_changes(tmp_path):
    from mmengine.runner import Runner
    img_dir = write_pngs(tmp_path / 'imgs', n=8)
    rec = register_recorder()
    rec.log = []
    cfg = tiny_cfg(img_dir, tmp_path / 'work', stages=((0, 2), (2, 2), (4, 2)), queue_len=20,
                   extra_hooks=[dict(type='AdamRecorderHook')])
    runner = Runner.from_cfg(cfg)
    runner.train()
    ptrs = [e['ptr'] for e in rec.log]
    assert ptrs == [4, 8, 12, 16, 0, 4]  # never reset at the stage starts (iters 2 and 4)
    assert [e['grans'] for e in rec.log] == [[0], [0], [2], [2], [4], [4]]
    assert runner.model.prune is True
