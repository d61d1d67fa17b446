"""The device helpers of mmanat.utils.device."""
import torch
from torch import nn

from mmanat.utils import default_device, model_device


class _BuffersOnly(nn.Module):

    def __init__(self):
        super().__init__()
        self.register_buffer('table', torch.zeros(2))


def test_default_device_follows_cuda_availability():
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert default_device().type == expected


def test_model_device_from_parameters_buffers_or_attribute():
    assert model_device(nn.Linear(2, 2)) == torch.device('cpu')
    meta = nn.Linear(2, 2, device='meta')
    assert model_device(meta) == torch.device('meta')
    buffers = _BuffersOnly().to('meta')
    assert model_device(buffers) == torch.device('meta')
    empty = nn.Identity()
    assert model_device(empty) == torch.device('cpu')
    empty.device = 'meta'
    assert model_device(empty) == torch.device('meta')
