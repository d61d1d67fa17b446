"""Two gloo processes train Adam for a few iterations through the mmengine Runner (the
CPU distributed path of tools/train.py); the queue must be identical on both ranks and hold
the keys of both (the pointer advances by world_size x batch per iteration)."""
import os
import os.path as osp
import socket

import pytest
import torch
import torch.multiprocessing as mp

from tests.helpers.adam_tiny import tiny_cfg, write_pngs


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world, port, img_dir, work_dir, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmanat.utils import register_all_modules
    from mmanat.utils.dist import setup_distributed
    register_all_modules(init_default_scope=False)
    cfg = Config(tiny_cfg(img_dir, work_dir, stages=((0, 2), (2, 1)), batch_size=3,
                          queue_len=32))
    setup_distributed(cfg, 'pytorch')
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model.module
    torch.save(dict(queue=model.queue.clone(), ptr=model.queue_ptr.clone(),
                    conv=model.backbone.conv1.weight.detach().clone(),
                    key_conv=model.momentum_backbone.conv1.weight.detach().clone()),
               osp.join(out_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_queue_consistent(tmp_path):
    img_dir = write_pngs(tmp_path / 'imgs', n=12)
    out = tmp_path / 'out'
    out.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), img_dir, str(tmp_path / 'w'), str(out)),
             nprocs=2, join=True)
    r0, r1 = (torch.load(out / f'rank{r}.pt') for r in (0, 1))
    assert r0['ptr'].item() == r1['ptr'].item() == (3 * 2 * 3) % 32  # 3 iters x 2 ranks x 3
    assert torch.equal(r0['queue'], r1['queue'])
    filled = r0['queue'][:18]
    torch.testing.assert_close(filled.norm(dim=1), torch.ones(18))
    # DDP kept the query encoders equal; the momentum encoders follow them identically
    assert torch.equal(r0['conv'], r1['conv']) and torch.equal(r0['key_conv'], r1['key_conv'])
