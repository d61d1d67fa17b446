"""Install mmanat. The full, pinned environment is created by ``make test`` / ``make demo``
(tools/setup_env.sh); ``pip install -e .`` alone expects torch, mmcv and mmdet installed."""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmanat', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        return [ln.split('#')[0].strip() for ln in f if ln.split('#')[0].strip()]


setup(
    name='mmanat',
    version=read_version(),
    description='Self-supervised anatomical embeddings for medical imaging (SAM/UAE, Adam/Eve)',
    long_description=open(osp.join(osp.dirname(__file__), 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    include_package_data=True,
    # the viewer's page; NiiVue itself comes from npm ci in mmanat/viewer/frontend
    package_data={'mmanat.viewer': ['static/*', 'frontend/package.json',
                                    'frontend/package-lock.json']},
    install_requires=read_requirements('runtime.txt'),
    # ants: the ANTs affine / SyN baselines of tools/benchmark.py (pip install -e ".[ants]")
    extras_require={'tests': read_requirements('tests.txt'), 'ants': ['antspyx>=0.4']},
    entry_points={
        'console_scripts': [
            # one command per module of mmanat/cli (tools/<name>.py run the same main)
            'mmanat-embed = mmanat.cli.embed:main',
            'mmanat-match = mmanat.cli.match:main',
            'mmanat-register = mmanat.cli.register:main',
            'mmanat-demo = mmanat.cli.demo:main',
            'mmanat-demo-semantic = mmanat.cli.demo:main_semantic',
            'mmanat-demo-semantic-stable-points = mmanat.cli.demo:main_semantic_stable_points',
            'mmanat-demo-ct-mr = mmanat.cli.demo:main_ct_mr',
            'mmanat-demo-xray = mmanat.cli.demo_xray:main',
            'mmanat-train = mmanat.cli.train:main',
            'mmanat-test = mmanat.cli.test:main',
            'mmanat-benchmark = mmanat.cli.benchmark:main',
            'mmanat-benchmark-inference = mmanat.cli.benchmark_inference:main',
            'mmanat-preprocess = mmanat.cli.preprocess:main',
            'mmanat-fetch-data = mmanat.cli.fetch_data:main',
            'mmanat-make-synthetic = mmanat.cli.make_synthetic:main',
            'mmanat-extract-eve = mmanat.cli.extract_eve:main',
            'mmanat-eval-lesion-tracking = mmanat.cli.eval_lesion_tracking:main',
            'mmanat-publish-checkpoint = mmanat.cli.publish_checkpoint:main',
            'mmanat-uae-m-recipe = mmanat.cli.uae_m_recipe:main',
            'mmanat-convert-sam = mmanat.cli.sam_to_mmanat:main',
            'mmanat-convert-adam = mmanat.cli.adam_to_mmanat:main',
            'mmanat-propagate = mmanat.cli.propagate:main',
            'mmanat-query = mmanat.cli.query:main',
            'mmanat-viewer = mmanat.cli.viewer:main',
        ],
    },
    zip_safe=False,
)
