from .resnet3d import ResNet3D

__all__ = ['ResNet3D']
