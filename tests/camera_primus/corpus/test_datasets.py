"""Vocabulary, dataset items, padding and width bucketing."""

from __future__ import annotations

import pytest
import torch

from mtlnb.camera_primus.corpus import datasets, feature_cache


def test_vocabulary_sorted_blank_last(tmp_path):
    vocab = datasets.Vocabulary.from_sequences([["tie", "barline"], ["clef-G2", "barline"]])
    assert vocab.symbols == ("barline", "clef-G2", "tie") and vocab.blank == 3
    assert vocab.encode(["tie", "barline"]) == [2, 0]
    assert vocab.decode([1]) == ["clef-G2"]
    with pytest.raises(KeyError, match="note-C4_quarter"):
        vocab.encode(["note-C4_quarter"])
    vocab.save(tmp_path / "v.json")
    assert datasets.Vocabulary.load(tmp_path / "v.json") == vocab


def test_dataset_items_and_collate(tiny_corpus):
    cache = feature_cache.build_cache(tiny_corpus, jobs=1, progress=False)
    labels = datasets.load_labels(cache, cache.ids)
    vocab = datasets.Vocabulary.from_sequences(labels.values())
    ds = datasets.PrimusDataset(cache, ["t0", "t1", "t2"], vocab)
    item = ds[1]
    assert item["id"] == "t1" and item["image"].shape[:2] == (1, 64) and item["audio"].shape[:2] == (1, 256)
    assert vocab.decode(item["labels"].tolist()) == labels["t1"]
    batch = datasets.collate([ds[0], ds[1], ds[2]])
    widths = batch["image_widths"].tolist()
    assert batch["image"].shape == (3, 1, 64, max(widths))
    assert batch["label_lengths"].tolist() == [len(labels[s]) for s in ("t0", "t1", "t2")]
    # zero padding to the right of the narrower images
    i = widths.index(min(widths))
    assert torch.count_nonzero(batch["image"][i, :, :, widths[i]:]) == 0
    image_only = datasets.PrimusDataset(cache, ["t0"], vocab, modality="image")[0]
    assert "audio" not in image_only


def test_dataset_reports_left_out(tiny_corpus):
    (tiny_corpus / "Corpus" / "t3" / "t3.wav").unlink()
    cache = feature_cache.build_cache(tiny_corpus, jobs=1, progress=False)
    vocab = datasets.Vocabulary.from_sequences(datasets.load_labels(cache, cache.ids).values())
    with pytest.warns(UserWarning, match="1 of 4 samples left out"):
        ds = datasets.PrimusDataset(cache, ["t0", "t1", "t2", "t3"], vocab)
    assert len(ds) == 3 and "t3.wav: file missing" in ds.left_out["t3"]


def test_width_bucket_sampler_covers_every_sample_once():
    widths = [5, 90, 7, 88, 6, 91, 40]
    sampler = datasets.WidthBucketSampler(widths, batch_size=2, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert len(batches) == len(sampler) == 4
    # batches group neighbours in width
    for b in batches:
        assert max(widths[i] for i in b) - min(widths[i] for i in b) <= 40
    sampler.set_epoch(1)
    assert list(datasets.WidthBucketSampler(widths, 2, seed=0)) == batches  # same seed and epoch, same order
