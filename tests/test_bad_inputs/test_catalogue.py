"""The bad-input catalogue: every console command and public reader, fed one bad input at a
time, stops with one clear line and leaves the outputs as they were.

For each console case (run in-process through the command's ``main``, exactly as the
console entry point does):

* the exit code is not 0;
* stderr holds exactly one ``error:`` line, naming the offending file or value (the
  ``expect`` fragments) and saying what to do (a fix verb: pass / use / fix / add / ...);
* no traceback (an uncaught exception would fail the test itself, and none is printed);
* the output folder is unchanged: an existing output file keeps its bytes, nothing new (no
  partial result, no temporary file) appears.

Each reader case calls a public reader and expects :class:`InvalidInputError` with the same
kind of message. Inputs are tiny (tests/test_bad_inputs/conftest.py) and the shipped tiny
checkpoints are used, so the whole catalogue runs in well under a minute.
"""
import importlib
import os
import re

import pytest

from mmanat.utils.exceptions import InvalidInputError

FIX = re.compile(r'\b(pass|use|fix|add|re-export|re-download|re-create|re-embed|remove|'
                 r'choose|give|check|convert|extract|rename|start|resume|drop|point to|run)\b',
                 re.I)
SENTINEL = b'an existing output that must survive\n'

# id: (command, argv with {placeholders}, fragments the error line must contain)
CLI_CASES = {
    # checkpoints of another network / unreadable checkpoints
    'match-adam-checkpoint': ('match', '--checkpoint {adam_ckpt} --template {ct} --points '
                              '{points} --target {ct2} --out {out_csv}',
                              ['adam_default.pth', '2D radiograph', 'needs a 3D']),
    'embed-adam-checkpoint': ('embed', '{ct} --checkpoint {adam_ckpt} --out-dir {out_dir}',
                              ['adam_default.pth', 'tools/embed.py needs a 3D']),
    'register-adam-checkpoint': ('register', '--checkpoint {adam_ckpt} --moving {ct} --fixed '
                                 '{ct2} --out-dir {out_dir}',
                                 ['adam_default.pth', 'tools/register.py needs a 3D']),
    'demo-adam-checkpoint': ('demo', '--checkpoint {adam_ckpt} --template {ct} --target {ct2} '
                             '--out {out_png}', ['adam_default.pth', 'needs a 3D']),
    'benchmark-inference-adam-checkpoint': ('benchmark_inference',
                                            '--checkpoint {adam_ckpt} --image {ct}',
                                            ['adam_default.pth', 'needs a 3D']),
    'extract-eve-sam-checkpoint': ('extract_eve', '{xray} --checkpoint {sam_ckpt} '
                                   '--out {out_npz}', ['sam_default.pth', 'needs a 2D']),
    'publish-missing-checkpoint': ('publish_checkpoint', '{dir}/nope.pth {out_dir}/p.pth',
                                   ['nope.pth', 'not found']),
    'match-config-of-other-network': ('match', '--config {adam_cfg} --checkpoint {sam_ckpt} '
                                      '--template {ct} --points {points} --target {ct2} '
                                      '--out {out_csv}', ['sam_default.pth', 'adam_r18half']),
    'match-truncated-checkpoint': ('match', '--checkpoint {ckpt_truncated} --template {ct} '
                                   '--points {points} --target {ct2} --out {out_csv}',
                                   ['truncated.pth', 'truncated']),
    'match-text-checkpoint': ('match', '--checkpoint {ckpt_text} --template {ct} --points '
                              '{points} --target {ct2} --out {out_csv}', ['text.pth']),
    'embed-checkpoint-without-weights': ('embed', '{ct} --checkpoint {ckpt_no_weights} '
                                         '--out-dir {out_dir}', ['noweights.pth', 'no weights']),
    'train-resume-truncated': ('train', '{sam_tiny_cfg} --work-dir {out_dir} --resume '
                               '{ckpt_truncated}', ['truncated.pth', 'truncated']),
    'train-resume-other-model': ('train', '{sam_tiny_cfg} --work-dir {out_dir} --resume '
                                 '{adam_ckpt}', ['adam_default.pth', 'model type SAM']),
    'train-resume-weights-only': ('train', '{sam_tiny_cfg} --work-dir {out_dir} --resume '
                                  '{sam_ckpt}', ['sam_default.pth', 'load_from=']),
    'train-load-from-other-model': ('train', '{sam_tiny_cfg} --work-dir {out_dir} '
                                    '--cfg-options load_from={adam_ckpt}',
                                    ['adam_default.pth', '2D radiograph']),
    'test-checkpoint-of-other-network': ('test', '{sam_tiny_cfg} {adam_ckpt} --work-dir '
                                         '{out_dir}', ['adam_default.pth', 'model type SAM']),
    'train-load-from-released-file': ('train', '{sam_tiny_cfg} --work-dir {out_dir} '
                                      '--cfg-options load_from={released_sam}',
                                      ['SAM.pth', 'sam_to_mmanat.py']),
    'train-missing-config': ('train', '{dir}/nope.py --work-dir {out_dir}', ['nope.py']),
    'test-missing-checkpoint': ('test', '{sam_tiny_cfg} {dir}/nope.pth --work-dir {out_dir}',
                                ['nope.pth', 'not found']),
    # image geometry and image files
    'match-nifti-zero-pixdim': ('match', '--checkpoint {sam_ckpt} --template '
                                '{nii_zero_pixdim} --points {points} --target {ct2} '
                                '--out {out_csv}', ['zero_pixdim.nii', 'pixdim']),
    'match-nifti-nan-pixdim': ('match', '--checkpoint {sam_ckpt} --template {ct} --points '
                               '{points} --target {nii_nan_pixdim} --out {out_csv}',
                               ['nan_pixdim.nii', 'nan']),
    'match-nifti-nan-sform': ('match', '--checkpoint {sam_ckpt} --template {nii_nan_sform} '
                              '--points {points} --target {ct2} --out {out_csv}',
                              ['nan_sform.nii', 'sform']),
    'embed-nifti-singular-sform': ('embed', '{nii_singular_sform} --checkpoint {sam_ckpt} '
                                   '--out-dir {out_dir}', ['singular_sform.nii', 'singular']),
    'match-mha-zero-spacing': ('match', '--checkpoint {sam_ckpt} --template {mha_zero_spacing} '
                               '--points {points} --target {ct2} --out {out_csv}',
                               ['zero_spacing.mha', 'spacing']),
    'match-truncated-nifti': ('match', '--checkpoint {sam_ckpt} --template {nii_truncated} '
                              '--points {points} --target {ct2} --out {out_csv}',
                              ['truncated.nii.gz', 'truncated']),
    'match-4d-image': ('match', '--checkpoint {sam_ckpt} --template {nii_4d} --points '
                       '{points} --target {ct2} --out {out_csv}', ['four_d.nii.gz', '4D']),
    'match-unknown-extension': ('match', '--checkpoint {sam_ckpt} --template {unknown_ext} '
                                '--points {points} --target {ct2} --out {out_csv}',
                                ['scan.xyz', 'extension']),
    'match-empty-image-file': ('match', '--checkpoint {sam_ckpt} --template {empty_image} '
                               '--points {points} --target {ct2} --out {out_csv}',
                               ['empty.nrrd']),
    'match-missing-target': ('match', '--checkpoint {sam_ckpt} --template {ct} --points '
                             '{points} --target {dir}/gone.nrrd --out {out_csv}',
                             ['gone.nrrd', 'not found']),
    'register-missing-moving': ('register', '--checkpoint {sam_ckpt} --moving {dir}/gone.nrrd '
                                '--fixed {ct} --out-dir {out_dir}', ['gone.nrrd', 'not found']),
    # point files
    'match-header-only-points': ('match', '--checkpoint {sam_ckpt} --template {ct} --points '
                                 '{points_header_only} --target {ct2} --out {out_csv}',
                                 ['header_only.csv', '0 point']),
    'match-2d-points': ('match', '--checkpoint {sam_ckpt} --template {ct} --points '
                        '{points_2d} --target {ct2} --out {out_csv}', ['p2d.csv', '2D points']),
    'match-empty-points-file': ('match', '--checkpoint {sam_ckpt} --template {ct} --points '
                                '{points_empty} --target {ct2} --out {out_csv}',
                                ['empty.csv', 'empty']),
    'match-points-not-numbers': ('match', '--checkpoint {sam_ckpt} --template {ct} --points '
                                 '{points_not_number} --target {ct2} --out {out_csv}',
                                 ['nan.csv', "'abc'"]),
    'match-points-bad-extension': ('match', '--checkpoint {sam_ckpt} --template {ct} --points '
                                   '{points_bad_ext} --target {ct2} --out {out_csv}',
                                   ['p.txt', 'extension']),
    'match-points-outside-template': ('match', '--checkpoint {sam_ckpt} --template {ct} '
                                      '--points {points_outside} --target {ct2} --out '
                                      '{out_csv}', ['far at', 'outside']),
    # outputs
    'match-out-is-a-folder': ('match', '--checkpoint {sam_ckpt} --template {ct} --points '
                              '{points} --target {ct2} --out {out_dir}',
                              ['is a folder', 'argument --out']),
    'match-out-unknown-extension': ('match', '--checkpoint {sam_ckpt} --template {ct} '
                                    '--points {points} --target {ct2} --out {out_dir}/x.txt',
                                    ['x.txt', 'extension']),
    'register-out-dir-is-a-file': ('register', '--checkpoint {sam_ckpt} --moving {ct} --fixed '
                                   '{ct2} --out-dir {out_csv}',
                                   ['found.csv is an existing file', '--out-dir']),
    'embed-out-dir-is-a-file': ('embed', '{ct} --checkpoint {sam_ckpt} --out-dir {out_csv}',
                                ['found.csv is an existing file']),
    'embed-out-dir-below-a-file': ('embed', '{ct} --checkpoint {sam_ckpt} --out-dir '
                                   '{out_csv}/sub', ['is a file']),
    'train-work-dir-is-a-file': ('train', '{sam_tiny_cfg} --work-dir {out_csv}',
                                 ['found.csv is an existing file']),
    'embed-folder-without-volumes': ('embed', '{folder_no_volumes} --checkpoint {sam_ckpt} '
                                     '--out-dir {out_dir}', ['no_volumes', 'no volume']),
    # every match below --min-score: the result is unusable (exit 1, nothing written)
    'match-every-score-below-min-score': ('match', '--checkpoint {sam_ckpt} --template {ct} '
                                          '--points {points} --target {ct2} --out {out_csv} '
                                          '--min-score 2 --no-progress',
                                          ['every match in', 'ct2', '--min-score -1']),
    'embed-missing-input': ('embed', '{dir}/gone --checkpoint {sam_ckpt} --out-dir {out_dir}',
                            ['gone', 'no such file']),
}


def _argv(template, paths, out):
    values = dict(paths, **out)
    return [a.format(**values) for a in template.split()]


def _run(command, argv, capsys):
    module = importlib.import_module(f'mmanat.cli.{command}')
    try:
        code = module.main(argv)
    except SystemExit as exc:  # argparse errors: usage + one "error:" line, exit 2
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _snapshot(folder):
    return {name: open(os.path.join(folder, name), 'rb').read()
            if os.path.isfile(os.path.join(folder, name)) else None
            for name in sorted(os.listdir(folder))}


@pytest.fixture
def outputs(tmp_path, bad):
    """An output folder holding one existing output file (which must survive)."""
    from tests.test_bad_inputs.conftest import ADAM_CFG, SAM_TINY_CFG
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    (out_dir / 'found.csv').write_bytes(SENTINEL)
    return dict(out_dir=str(out_dir), out_csv=str(out_dir / 'found.csv'),
                out_png=str(out_dir / 'found.png'), out_npz=str(out_dir / 'eve.npz'),
                sam_tiny_cfg=str(SAM_TINY_CFG), adam_cfg=str(ADAM_CFG))


def test_catalogue_is_large_enough():
    assert len(CLI_CASES) + len(READER_CASES) >= 30
    assert {c[0] for c in CLI_CASES.values()} >= {'match', 'embed', 'register', 'train',
                                                   'test', 'demo', 'extract_eve',
                                                   'benchmark_inference'}


@pytest.mark.parametrize('case', sorted(CLI_CASES))
def test_cli_bad_input(case, bad, outputs, capsys):
    command, template, expect = CLI_CASES[case]
    before = _snapshot(outputs['out_dir'])
    code, out, err = _run(command, _argv(template, bad, outputs), capsys)
    assert code not in (0, None), f'{case}: exit code {code}\n{out}\n{err}'
    assert 'Traceback' not in out + err, err
    lines = [ln for ln in err.splitlines() if re.match(r'^(\S+: )?error: ', ln)]
    assert len(lines) == 1, f'{case}: expected one error line, got:\n{err}'
    line = lines[0]
    for fragment in expect:
        assert fragment.lower() in line.lower(), f'{case}: {fragment!r} not in {line!r}'
    assert FIX.search(line), f'{case}: the message says no fix: {line!r}'
    assert _snapshot(outputs['out_dir']) == before, f'{case}: the output folder changed'


# ------------------------------------------------------------------------- public readers
def _read_volume(path):
    from mmanat.fileio import read_volume
    return read_volume(path)


def _read_points(path, **kw):
    from mmanat.fileio import read_points
    return read_points(path, **kw)


def _init_model(ckpt, **kw):
    from mmanat.apis import init_model
    return init_model(None, ckpt, device='cpu', **kw)


def _load_embeddings(path):
    from mmanat.apis import load_embeddings
    return load_embeddings(path)


# id: (callable, argument key in the ``bad`` paths, keyword arguments, fragments)
READER_CASES = {
    'read-volume-nifti-zero-pixdim': (_read_volume, 'nii_zero_pixdim', {}, ['pixdim', '0.0']),
    'read-volume-nifti-nan-pixdim': (_read_volume, 'nii_nan_pixdim', {}, ['pixdim', 'nan']),
    'read-volume-nifti-nan-sform': (_read_volume, 'nii_nan_sform', {}, ['srow']),
    'read-volume-label-map-is-fine-but-4d-is-not': (_read_volume, 'nii_4d', {}, ['4D']),
    'read-points-2d-where-3d-needed': (_read_points, 'points_2d', dict(ndim=3), ['z column']),
    'read-points-header-only': (_read_points, 'points_header_only', dict(min_points=1),
                                ['at least 1']),
    'init-model-adam-for-3d-task': (_init_model, 'adam_ckpt', dict(expect='3d-embedding'),
                                    ['Adam', 'SAM / UAE']),
    'init-model-sam-for-2d-task': (_init_model, 'sam_ckpt', dict(expect='2d-embedding'),
                                   ['model type SAM', 'adam_default.pth']),
    'init-model-truncated': (_init_model, 'ckpt_truncated', {}, ['truncated']),
    'load-embeddings-not-a-cache': (_load_embeddings, 'ckpt_text', {}, ['re-create']),
}


@pytest.mark.parametrize('case', sorted(READER_CASES))
def test_reader_bad_input(case, bad):
    func, key, kwargs, expect = READER_CASES[case]
    with pytest.raises(InvalidInputError) as exc:
        func(bad[key], **kwargs)
    msg = str(exc.value)
    assert os.path.basename(bad[key]) in msg, msg
    for fragment in expect:
        assert fragment.lower() in msg.lower(), f'{case}: {fragment!r} not in {msg!r}'
    assert FIX.search(msg), msg
