"""Distributed start-up that also works on CPU-only machines.

mmengine 0.10's ``pytorch``/``slurm`` launchers call ``torch.cuda.set_device`` and wrap the
model in DDP with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. On a CPU-only machine we
initialise a gloo process group ourselves *before* the Runner is built (the Runner then skips
its own initialisation) and ask for a DDP wrapper without device ids. With CUDA we leave
everything to mmengine. This is the one place that knows about it (tools/train.py,
tools/test.py and tools/embed.py call it).
"""
import os
import subprocess

import torch
import torch.distributed as torch_dist


def _slurm_env_to_torch_env(port: int = 29500) -> None:
    """Translate SLURM_* variables into the torch.distributed ones (RANK, WORLD_SIZE, ...)."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    if 'MASTER_ADDR' not in os.environ:
        addr = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
        os.environ['MASTER_ADDR'] = addr
    os.environ.setdefault('MASTER_PORT', str(port))
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def setup_distributed(cfg, launcher: str) -> None:
    """Prepare ``cfg`` (an mmengine Config) for ``launcher`` on this machine.

    * ``none``: nothing to do.
    * CUDA available: mmengine initialises NCCL itself from ``cfg.launcher``.
    * CPU only: initialise gloo here and set a device-less DDP wrapper.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher == 'slurm':
        _slurm_env_to_torch_env()
    elif launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} is not supported on a CPU-only machine; '
                         'use "pytorch" (torchrun) or "slurm".')
    if not torch_dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
        import datetime
        torch_dist.init_process_group(
            backend='gloo', timeout=datetime.timedelta(seconds=timeout))
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
