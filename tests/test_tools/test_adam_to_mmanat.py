"""Converters of the released Adam checkpoints, on state dicts built in the published key
layouts (assumed layouts, see mmanat/apis/published_adam.py): Adam v1 = MoCo v2 ResNet-50
(torchvision names under module.encoder_q / encoder_k, queue (128, K)); Adam v2 = DINO-style
ConvNeXt (facebook names under teacher / student, backbone. / head.). Every key must map and
the result must load strictly, into the Eve tools and the radiograph classifier."""
import argparse
import os.path as osp

import pytest
import torch

from mmanat.apis.published_adam import (adam_version, convert_adam_checkpoint,
                                        convert_v2_state, released_state)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def torchvision_resnet50_layout():
    """name -> shape of torchvision's resnet50().state_dict() (written out by hand)."""
    out = {'conv1.weight': (64, 3, 7, 7)}

    def bn(p, c):
        out.update({f'{p}.weight': (c, ), f'{p}.bias': (c, ), f'{p}.running_mean': (c, ),
                    f'{p}.running_var': (c, ), f'{p}.num_batches_tracked': ()})
    bn('bn1', 64)
    cin = 64
    for li, (blocks, w) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=1):
        for b in range(blocks):
            p = f'layer{li}.{b}'
            out[f'{p}.conv1.weight'] = (w, cin, 1, 1)
            bn(f'{p}.bn1', w)
            out[f'{p}.conv2.weight'] = (w, w, 3, 3)
            bn(f'{p}.bn2', w)
            out[f'{p}.conv3.weight'] = (4 * w, w, 1, 1)
            bn(f'{p}.bn3', 4 * w)
            if b == 0:
                out[f'{p}.downsample.0.weight'] = (4 * w, cin, 1, 1)
                bn(f'{p}.downsample.1', 4 * w)
            cin = 4 * w
    return out


def fb_convnext_layout(depths, dims, in_ch=3):
    """name -> shape of facebook's ConvNeXt (convnext.py of facebookresearch/ConvNeXt),
    without the classifier head."""
    out = {'downsample_layers.0.0.weight': (dims[0], in_ch, 4, 4),
           'downsample_layers.0.0.bias': (dims[0], ),
           'downsample_layers.0.1.weight': (dims[0], ), 'downsample_layers.0.1.bias': (dims[0], )}
    for i in range(1, 4):
        out.update({f'downsample_layers.{i}.0.weight': (dims[i - 1], ),
                    f'downsample_layers.{i}.0.bias': (dims[i - 1], ),
                    f'downsample_layers.{i}.1.weight': (dims[i], dims[i - 1], 2, 2),
                    f'downsample_layers.{i}.1.bias': (dims[i], )})
    for i, (d, c) in enumerate(zip(depths, dims)):
        for j in range(d):
            p = f'stages.{i}.{j}'
            out.update({f'{p}.gamma': (c, ), f'{p}.dwconv.weight': (c, 1, 7, 7),
                        f'{p}.dwconv.bias': (c, ), f'{p}.norm.weight': (c, ),
                        f'{p}.norm.bias': (c, ), f'{p}.pwconv1.weight': (4 * c, c),
                        f'{p}.pwconv1.bias': (4 * c, ), f'{p}.pwconv2.weight': (c, 4 * c),
                        f'{p}.pwconv2.bias': (c, )})
    out.update({'norm.weight': (dims[3], ), 'norm.bias': (dims[3], )})
    return out


def dino_head_layout(in_dim, hid, bottleneck, k):
    return {'mlp.0.weight': (hid, in_dim), 'mlp.0.bias': (hid, ), 'mlp.2.weight': (hid, hid),
            'mlp.2.bias': (hid, ), 'mlp.4.weight': (bottleneck, hid),
            'mlp.4.bias': (bottleneck, ), 'last_layer.weight_g': (k, 1),
            'last_layer.weight_v': (k, bottleneck)}


def tensors(layout, prefix='', seed=0, device=None):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in layout.items():
        if device == 'meta':
            out[prefix + k] = torch.empty(s, device='meta')
        elif k.endswith('num_batches_tracked'):
            out[prefix + k] = torch.tensor(7)
        else:
            out[prefix + k] = torch.rand(s, generator=g) + 0.5
    return out


def test_v2_convnext_b_keys_map_one_to_one():
    """ConvNeXt-B with the published shapes (on the meta device: no memory)."""
    from mmanat.models.backbones import ConvNeXt
    with torch.device('meta'):
        own = ConvNeXt(arch='base', in_channels=3).state_dict()
    layout = fb_convnext_layout((3, 3, 27, 3), (128, 256, 512, 1024))
    release = tensors(layout, 'backbone.', device='meta')
    release.update(tensors(dino_head_layout(1024, 2048, 256, 65536), 'head.', device='meta'))
    assert adam_version(release) == 'v2'
    mapped = convert_v2_state(release)
    bb = {k[len('backbone.'):]: v for k, v in mapped.items() if k.startswith('backbone.')}
    assert set(bb) == set(own)
    assert all(bb[k].shape == own[k].shape for k in own)
    assert sum(v.numel() for v in bb.values()) == 87_566_464  # ConvNeXt-B without its head
    assert sorted(k for k in mapped if k.startswith('teacher_head.')) == sorted(
        'teacher_head.' + k for k in dino_head_layout(1, 1, 1, 1))


def test_v1_moco_release_converts_and_loads(tmp_path):
    from mmanat.apis import init_model
    from mmanat.models.algorithms import RadiographClassifier
    layout = torchvision_resnet50_layout()
    state = tensors(layout, 'module.encoder_q.', seed=1)
    state.update(tensors(layout, 'module.encoder_k.', seed=2))
    for enc, seed in (('encoder_q', 3), ('encoder_k', 4)):
        state.update(tensors({'fc.0.weight': (2048, 2048), 'fc.0.bias': (2048, ),
                              'fc.2.weight': (128, 2048), 'fc.2.bias': (128, )},
                             f'module.{enc}.', seed=seed))
    state['module.queue'] = torch.randn(128, 65536)
    state['module.queue_ptr'] = torch.tensor([256])
    src = tmp_path / 'adam_v1_release.pth'
    torch.save(dict(epoch=200, arch='resnet50', state_dict=state), src)
    dst = tmp_path / 'adam_v1_mmanat.pth'
    info = convert_adam_checkpoint(str(src), str(dst))
    assert info['version'] == 'v1' and info['random_init'] == []
    out = torch.load(dst, weights_only=False)['state_dict']
    assert torch.equal(out['backbone.layer4.2.conv3.weight'],
                       state['module.encoder_q.layer4.2.conv3.weight'])
    assert torch.equal(out['momentum_backbone.conv1.weight'],
                       state['module.encoder_k.conv1.weight'])
    assert torch.equal(out['neck.mlp.2.weight'], state['module.encoder_q.fc.2.weight'])
    torch.testing.assert_close(out['queue'][5], torch.nn.functional.normalize(
        state['module.queue'][:, 5], dim=0))
    assert int(out['queue_ptr']) == 256
    model = init_model(None, str(dst), device='cpu', expect='2d-embedding')
    with torch.no_grad():
        assert model.extract_feat(torch.rand(1, 3, 64, 64)).shape == (1, 2048)
    clf = RadiographClassifier(backbone=dict(type='mmdet.ResNet', depth=50, in_channels=3,
                                             out_indices=(3, ), style='pytorch'),
                               num_classes=3, in_channels=2048, pretrained=str(dst))
    assert clf.load_pretrained_backbone(str(dst)) == len(clf.backbone.state_dict())


def test_v1_plain_torchvision_resnet_keeps_head_random(tmp_path):
    state = tensors(torchvision_resnet50_layout(), 'module.', seed=5)
    state.update({'module.fc.weight': torch.zeros(1000, 2048),
                  'module.fc.bias': torch.zeros(1000)})
    src, dst = tmp_path / 'r50.pth', tmp_path / 'out.pth'
    torch.save(state, src)
    info = convert_adam_checkpoint(str(src), str(dst))
    assert info['random_init'] == ['momentum_neck', 'neck', 'queue', 'queue_ptr']
    out = torch.load(dst, weights_only=False)['state_dict']
    assert torch.equal(out['momentum_backbone.bn1.weight'], state['module.bn1.weight'])


def tiny_v2_config(tmp_path):
    path = tmp_path / 'adamv2_tiny.py'
    ref = osp.join(ROOT, 'configs', 'adam', 'adamv2_convnext-b-dino_8xb32-3x200e_cxr14.py')
    path.write_text(f"""_base_ = [{ref!r}]
model = dict(backbone=dict(arch=dict(_delete_=True, depths=(1, 1, 2, 1),
                                     channels=(8, 16, 24, 32))),
             head=dict(in_channels=32, hid_channels=16, bottleneck_channels=8, out_channels=20),
             compose_head=dict(in_channels=32, hid_channels=16),
             decompose_head=dict(in_channels=32, hid_channels=16),
             loss_loc=dict(out_channels=20))
""")
    return str(path)


def test_v2_dino_release_converts_and_loads(tmp_path):
    from mmanat.apis import init_model
    depths, dims = (1, 1, 2, 1), (8, 16, 24, 32)
    layout = fb_convnext_layout(depths, dims)
    head = dino_head_layout(32, 16, 8, 20)
    ckpt = dict(teacher={**tensors(layout, 'backbone.', seed=1), **tensors(head, 'head.', 2)},
                student={**tensors(layout, 'module.backbone.', seed=3),
                         **tensors(head, 'module.head.', 4)},
                epoch=100, args=argparse.Namespace(arch='convnext_base'))
    src, dst = tmp_path / 'adamv2_release.pth', tmp_path / 'adamv2_mmanat.pth'
    torch.save(ckpt, src)
    assert adam_version(released_state(torch.load(src, weights_only=False))[0]) == 'v2'
    info = convert_adam_checkpoint(str(src), str(dst), config=tiny_v2_config(tmp_path))
    assert info['version'] == 'v2'
    assert info['random_init'] == ['compose_head', 'decompose_head', 'ema_step', 'loss_loc']
    out = torch.load(dst, weights_only=False)['state_dict']
    t, s = ckpt['teacher'], ckpt['student']
    assert torch.equal(out['backbone.stages.2.1.pointwise_conv1.weight'],
                       t['backbone.stages.2.1.pwconv1.weight'])
    assert torch.equal(out['backbone.norm3.bias'], t['backbone.norm.bias'])
    assert torch.equal(out['student_backbone.stages.0.0.depthwise_conv.weight'],
                       s['module.backbone.stages.0.0.dwconv.weight'])
    assert torch.equal(out['teacher_head.last_layer.weight_v'], t['head.last_layer.weight_v'])
    model = init_model(None, str(dst), device='cpu', expect='2d-embedding')
    with torch.no_grad():
        feat = model.extract_feat(torch.rand(2, 3, 64, 64))
    assert feat.shape == (2, 32) and torch.isfinite(feat).all()
    # the network Eve uses is the released teacher
    student = convert_adam_checkpoint(str(src), str(tmp_path / 's.pth'), which='student',
                                      config=tiny_v2_config(tmp_path))
    assert student['version'] == 'v2'
    out_s = torch.load(tmp_path / 's.pth', weights_only=False)['state_dict']
    assert torch.equal(out_s['backbone.norm3.bias'], s['module.backbone.norm.bias'])


def test_misfit_release_is_refused(tmp_path):
    from mmanat.utils.exceptions import InvalidInputError
    layout = fb_convnext_layout((1, 1, 2, 1), (8, 16, 24, 48))  # wrong last width
    src = tmp_path / 'bad.pth'
    torch.save(dict(teacher=tensors(layout, 'backbone.')), src)
    with pytest.raises(InvalidInputError, match='another shape'):
        convert_adam_checkpoint(str(src), str(tmp_path / 'o.pth'),
                                config=tiny_v2_config(tmp_path))
    assert not (tmp_path / 'o.pth').exists()


@pytest.mark.slow
def test_v2_convnext_b_release_loads_strictly(tmp_path):
    """The full reference config (ConvNeXt-B, 65,536 prototypes) from a release with the
    published shapes."""
    layout = fb_convnext_layout((3, 3, 27, 3), (128, 256, 512, 1024))
    ckpt = dict(teacher={**tensors(layout, 'backbone.', seed=1),
                         **tensors(dino_head_layout(1024, 2048, 256, 65536), 'head.', 2)})
    src = tmp_path / 'adamv2_b.pth'
    torch.save(ckpt, src)
    del ckpt
    info = convert_adam_checkpoint(str(src), str(tmp_path / 'out.pth'))
    assert info['version'] == 'v2'
    assert info['random_init'] == ['compose_head', 'decompose_head', 'ema_step', 'loss_loc']
