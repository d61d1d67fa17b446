"""Where tensors live: the default compute device and the device of a module."""
import torch


def default_device() -> torch.device:
    """The device used when none is given.

    Returns:
        ``cuda`` (the current GPU) when a GPU is visible, else ``cpu``.
    """
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def model_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's weights.

    Args:
        module: any ``torch.nn.Module``.

    Returns:
        The device of its first parameter; for a module without parameters, of its first
        buffer; for a module with neither, its ``device`` attribute if it has one, else
        ``cpu``.
    """
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device(getattr(module, 'device', 'cpu'))
