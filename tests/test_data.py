"""Datasets: the bundled digits presentations, the SHD/SSC HDF5 reader, batching."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurocompile.data import (
    DatasetNotFoundError,
    iterate_batches,
    load_dataset,
    load_shd,
    make_dataloader,
)
from neurocompile.data.digits import (
    digit_images,
    pixel_permutation,
    rate_code,
    sequential,
    split_indices,
)
from neurocompile.data.shd import bin_spikes, read_spike_file
from neurocompile.errors import InputDataError

# ---------------------------------------------------------------- digits


def test_split_is_fixed_disjoint_and_stratified():
    images, labels = digit_images()
    assert images.shape == (1797, 64) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() == 1.0
    tr, va, te = split_indices(labels, seed=0)
    assert len(tr) + len(va) + len(te) == 1797
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    again = split_indices(labels, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    for c in range(10):  # every class in every split, in roughly the split proportions
        n_c = np.sum(labels == c)
        assert abs(np.sum(labels[tr] == c) - 0.7 * n_c) <= 1
        assert np.sum(labels[va] == c) >= 1 and np.sum(labels[te] == c) >= 1
    other = split_indices(labels, seed=1)
    assert not np.array_equal(tr, other[0])


def test_rate_code_is_seeded_bernoulli_of_intensity():
    img = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    x = rate_code(np.repeat(img, 50, axis=0), steps=200, seed=3)
    assert x.shape == (50, 200, 4) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0}
    rates = x.mean(axis=(0, 1))
    assert rates[0] == 0.0 and rates[3] == 1.0
    np.testing.assert_allclose(rates[1:3], [0.25, 0.5], atol=0.01)  # 10000 draws each
    np.testing.assert_array_equal(x, rate_code(np.repeat(img, 50, axis=0), 200, seed=3))
    assert not np.array_equal(x, rate_code(np.repeat(img, 50, axis=0), 200, seed=4))
    half = rate_code(np.repeat(img, 50, axis=0), 200, seed=3, max_rate=0.5)
    assert abs(half.mean(axis=(0, 1))[3] - 0.5) < 0.02


def test_digits_rate_task():
    splits = load_dataset("digits", steps=12, seed=0)
    assert splits.train.x.shape[1:] == (12, 64) and splits.steps == 12
    assert splits.n_classes == 10 and splits.n_features == 64
    assert splits.train.x.dtype == np.float32 and splits.train.y.dtype == np.int64
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797
    again = load_dataset("digits", steps=12, seed=0)
    np.testing.assert_array_equal(splits.test.x, again.test.x)
    # the images' brightness shows up as spike counts: bright pixels spike more
    images, labels = digit_images()
    _, _, te = split_indices(labels, 0)
    counts = splits.test.x.sum(axis=1)
    assert np.corrcoef(counts.ravel(), images[te].ravel())[0, 1] > 0.8
    np.testing.assert_array_equal(splits.test.y, labels[te])


def test_sequential_rows_and_pixels():
    images, labels = digit_images()
    seq = load_dataset("digits-seq")
    _, _, te = split_indices(labels, 0)
    assert seq.test.x.shape == (len(te), 8, 8)
    np.testing.assert_array_equal(seq.test.x[:, 3, :], images[te][:, 24:32])  # row 3
    px = sequential(images[:5], pixels_per_step=1)
    assert px.shape == (5, 64, 1)
    np.testing.assert_array_equal(px[:, :, 0], images[:5])
    rep = sequential(images[:5], pixels_per_step=8, repeat=3)
    assert rep.shape == (5, 24, 8)
    np.testing.assert_array_equal(rep[:, 0], rep[:, 2])
    np.testing.assert_array_equal(rep[:, 3], images[:5, 8:16])
    with pytest.raises(InputDataError, match="divide"):
        sequential(images[:5], pixels_per_step=7)


def test_permuted_sequential_uses_one_fixed_permutation():
    images, labels = digit_images()
    _, _, te = split_indices(labels, 0)
    perm = pixel_permutation()
    assert sorted(perm) == list(range(64)) and not np.array_equal(perm, np.arange(64))
    np.testing.assert_array_equal(perm, pixel_permutation())
    p = load_dataset("digits-pseq")
    np.testing.assert_array_equal(p.test.x.reshape(len(te), 64), images[te][:, perm])
    p1 = load_dataset("digits-pseq", pixels_per_step=1)
    assert p1.test.x.shape == (len(te), 64, 1)


def test_unknown_dataset_and_bad_options():
    with pytest.raises(InputDataError, match="unknown dataset"):
        load_dataset("mnist")
    with pytest.raises(InputDataError, match="steps"):
        load_dataset("digits", steps=0)


# ---------------------------------------------------------------- SHD / SSC format


def write_shd(path, samples, labels, *, time_dtype=np.float16, unit_dtype=np.uint16):
    """A file in the published SHD/SSC layout: vlen spikes/times (s), spikes/units, labels."""
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),),
                                 dtype=h5py.vlen_dtype(np.dtype(time_dtype)))
        units = f.create_dataset("spikes/units", (len(samples),),
                                 dtype=h5py.vlen_dtype(np.dtype(unit_dtype)))
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, dtype=time_dtype)
            units[i] = np.asarray(u, dtype=unit_dtype)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/speaker", data=np.zeros(len(samples), dtype=np.uint16))


SAMPLES = [
    ([0.0, 0.0105, 0.0107, 0.5, 0.999, 1.2], [3, 699, 699, 10, 0, 5]),
    ([], []),
    ([0.25], [42]),
]


def test_shd_binning_by_hand(tmp_path):
    f = tmp_path / "shd_train.h5"
    write_shd(f, SAMPLES, [7, 0, 19], time_dtype=np.float32)
    ds = read_spike_file(f, steps=100, duration=1.0, n_classes=20)
    assert ds.x.shape == (3, 100, 700) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.y, [7, 0, 19])
    expected = np.zeros((3, 100, 700), np.float32)
    expected[0, 0, 3] = 1
    expected[0, 1, 699] = 2  # two spikes in the same bin
    expected[0, 50, 10] = 1
    expected[0, 99, 0] = 1  # 1.2 s is past the duration: dropped
    expected[2, 25, 42] = 1
    np.testing.assert_array_equal(ds.x, expected)
    binary = read_spike_file(f, steps=100, duration=1.0, binary=True)
    assert binary.x[0, 1, 699] == 1 and binary.x.sum() == 5
    longer = read_spike_file(f, steps=13, duration=1.3)  # 0.1 s bins: 1.2 s now lands in bin 12
    assert longer.x[0, 12, 5] == 1 and longer.x.sum() == 7


def test_shd_float16_times_as_published(tmp_path):
    write_shd(tmp_path / "shd_train.h5", SAMPLES, [1, 2, 3])  # float16 times, uint16 units
    ds = read_spike_file(tmp_path / "shd_train.h5", steps=4, duration=1.0, max_samples=2)
    assert ds.x.shape == (2, 4, 700)
    assert ds.x[0, 0].sum() == 3 and ds.x[0, 2, 10] == 1 and ds.x[0, 3, 0] == 1


def test_load_shd_splits_from_env_dir(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    samples = [(np.sort(rng.random(20)), rng.integers(0, 700, 20)) for _ in range(30)]
    write_shd(tmp_path / "shd_train.h5", samples, rng.integers(0, 20, 30))
    write_shd(tmp_path / "shd_test.h5", samples[:5], rng.integers(0, 20, 5))
    monkeypatch.setenv("NEUROCOMPILE_SHD_DIR", str(tmp_path))
    splits = load_dataset("shd", steps=10, val_fraction=0.2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 5)
    assert splits.n_classes == 20 and splits.n_features == 700 and splits.steps == 10
    total = sum(s.x.sum() for s in (splits.train, splits.val))  # the split loses no sample
    assert total == 30 * 20
    by_path = load_shd("shd", path=tmp_path / "shd_test.h5", steps=10)  # a file's directory
    np.testing.assert_array_equal(by_path.test.x, splits.test.x)


def test_ssc_uses_its_validation_file(tmp_path):
    for split, n in (("train", 4), ("valid", 3), ("test", 2)):
        write_shd(tmp_path / f"ssc_{split}.h5", [([0.1], [1])] * n, [34] * n)
    splits = load_shd("ssc", path=tmp_path, steps=5)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 3, 2)
    assert splits.n_classes == 35


def test_missing_file_says_how_to_point_at_it(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROCOMPILE_SHD_DIR", raising=False)
    monkeypatch.delenv("NEUROCOMPILE_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("shd")
    msg = str(err.value)
    assert "not present" in msg and "NEUROCOMPILE_SHD_DIR" in msg and "path=" in msg
    assert "does not download" in msg
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        load_shd("shd", path=tmp_path)


def test_bad_files_raise_input_errors(tmp_path):
    f = tmp_path / "shd_train.h5"
    write_shd(f, [([0.1], [700])], [0])
    with pytest.raises(InputDataError, match="unit index 700"):
        read_spike_file(f)
    with h5py.File(tmp_path / "other.h5", "w") as h:
        h.create_dataset("labels", data=[0])
    with pytest.raises(InputDataError, match="spikes/times"):
        read_spike_file(tmp_path / "other.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputDataError, match="not an HDF5"):
        read_spike_file(tmp_path / "text.h5")
    with pytest.raises(InputDataError, match="2 spike times but 1 units"):
        bin_spikes([np.array([0.1, 0.2])], [np.array([1])], 10, 1.0)


# ---------------------------------------------------------------- batching


def test_iterate_batches_shards_cover_every_sample():
    splits = load_dataset("digits", steps=2)
    val = splits.val
    seen = np.concatenate([yb for r in range(3)
                           for _, yb in iterate_batches(val, 16, rank=r, world_size=3, pad=False)])
    assert len(seen) == len(val)
    padded = [sum(len(yb) for _, yb in iterate_batches(val, 16, shuffle=True, seed=1, rank=r,
                                                        world_size=3)) for r in range(3)]
    assert padded == [-(-len(val) // 3)] * 3
    x0, _ = next(iterate_batches(val, 8, shuffle=True, seed=5))
    x1, _ = next(iterate_batches(val, 8, shuffle=True, seed=5))
    np.testing.assert_array_equal(x0, x1)


def test_make_dataloader():
    torch = pytest.importorskip("torch")
    splits = load_dataset("digits", steps=3)
    xb, yb = next(iter(make_dataloader(splits.train, 32, shuffle=True, seed=0)))
    assert isinstance(xb, torch.Tensor) and xb.shape == (32, 3, 64) and yb.dtype == torch.int64
    n = [sum(len(y) for _, y in make_dataloader(splits.val, 16, rank=r, world_size=2))
         for r in range(2)]
    assert n == [-(-len(splits.val) // 2)] * 2
