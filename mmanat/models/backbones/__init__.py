from .resnet3d import ResNet3D

__all__ = ['ResNet3D']
from .convnext import ConvNeXt  # noqa: F401,E402
