"""mmanat.fileio.formats: the one extension list and file-name stems."""
import pytest

import mmanat.fileio as fileio
from mmanat.fileio import formats
from mmanat.fileio.formats import (KNOWN_EXTENSIONS, READ_IMAGE_IO, SUPPORTED_EXTENSIONS,
                                   VOLUME_EXTENSIONS, WRITE_IMAGE_IO, filename_stem,
                                   image_extension, is_volume_file, split_extension,
                                   strip_extension)


def test_lists_are_consistent():
    assert SUPPORTED_EXTENSIONS == tuple(READ_IMAGE_IO)
    assert SUPPORTED_EXTENSIONS[:6] == VOLUME_EXTENSIONS
    assert VOLUME_EXTENSIONS == ('.nii.gz', '.nii', '.nrrd', '.nhdr', '.mha', '.mhd')
    assert set(KNOWN_EXTENSIONS) == set(SUPPORTED_EXTENSIONS) | {'.npy'}
    # a single slice of DICOM/PNG/JPEG is a 2D picture; only PNG/JPEG lack a pixel spacing
    assert formats.PICTURE_EXTENSIONS == ('.dcm', '.dicom', '.png', '.jpg', '.jpeg')
    assert formats.BITMAP_EXTENSIONS == ('.png', '.jpg', '.jpeg')
    # DICOM and detached NRRD headers cannot be written
    assert set(READ_IMAGE_IO) - set(WRITE_IMAGE_IO) == {'.dcm', '.dicom', '.nhdr'}
    assert all(e == e.lower() and e.startswith('.') for e in KNOWN_EXTENSIONS)
    # the package re-exports the same objects
    assert fileio.SUPPORTED_EXTENSIONS is SUPPORTED_EXTENSIONS
    assert fileio.VOLUME_EXTENSIONS is VOLUME_EXTENSIONS
    assert fileio.filename_stem is filename_stem


@pytest.mark.parametrize('path, root, ext', [
    ('a/b/lung1.nii.gz', 'a/b/lung1', '.nii.gz'),
    ('a/b/lung1.nii', 'a/b/lung1', '.nii'),
    ('CT.NII.GZ', 'CT', '.nii.gz'),  # case-insensitive, root keeps its case
    ('sub/x.npy', 'sub/x', '.npy'),
    ('img.dcm', 'img', '.dcm'),
    ('scan.nii.bz2', 'scan.nii.bz2', ''),  # unknown: nothing stripped
    ('noext', 'noext', ''),
    ('weird.gz', 'weird.gz', ''),  # '.gz' alone is not a known extension
])
def test_split_extension(path, root, ext):
    assert split_extension(path) == (root, ext)
    assert strip_extension(path) == root
    assert split_extension(path)[0] + path[len(root):] == path


def test_split_extension_with_own_list_longest_first():
    assert split_extension('emb/b.emb.pt', ('.pt', '.emb.pt')) == ('emb/b', '.emb.pt')
    assert split_extension('a.nii.gz', VOLUME_EXTENSIONS + ('.gz', )) == ('a', '.nii.gz')
    assert split_extension('a.png', VOLUME_EXTENSIONS) == ('a.png', '')


@pytest.mark.parametrize('path, stem', [
    ('a/b/lung1.nii.gz', 'lung1'),
    ('/data/ct/Case_07.NRRD', 'Case_07'),
    ('scans/series_3/', 'series_3'),  # a DICOM folder: its name
    ('scans/series_3', 'series_3'),
    ('cache/volumes/p1.npy', 'p1'),
    ('x/readme.txt', 'readme.txt'),
])
def test_filename_stem(path, stem):
    assert filename_stem(path) == stem


def test_image_extension_and_is_volume_file():
    assert image_extension('A.Nii.Gz') == '.nii.gz'
    assert image_extension('x.nii.bz2') == '.bz2'  # for the 'unknown extension' message
    assert image_extension('scan') == ''
    assert image_extension('cache.npy') == '.npy'  # not readable by read_image
    assert '.npy' not in READ_IMAGE_IO
    assert is_volume_file('b.NRRD') and is_volume_file('a/b.nii.gz')
    assert not is_volume_file('a.dcm') and not is_volume_file('a.npy')


def test_one_list_in_the_package():
    """The volume list is written once: the datasets use the same object."""
    from mmanat.datasets import volume_list_dataset
    assert volume_list_dataset.VOLUME_EXTENSIONS is formats.VOLUME_EXTENSIONS
