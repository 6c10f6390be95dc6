"""Epochs are numbered from 1 in history.csv (older 0-based files still resume)."""

from __future__ import annotations

import csv

from unet_tf.training.checkpoints import HistoryFile, read_rows
from unet_tf.training.fit import best_epoch, previous_best


def write_history(path, epochs, scores):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "val_dice"])
        writer.writerows(zip(epochs, scores, strict=True))


def test_history_rows_are_numbered_from_one(tmp_path):
    path = tmp_path / "history.csv"
    history = HistoryFile(path, start=0)
    history.on_train_begin()
    history.on_epoch_end(0, {"val_dice": 0.5})
    history.on_epoch_end(1, {"val_dice": 0.7})
    assert [row["epoch"] for row in read_rows(path)] == ["1", "2"]
    assert best_epoch(path, "val_dice") == 2


def test_a_resumed_run_keeps_the_finished_epochs_and_drops_the_rest(tmp_path):
    path = tmp_path / "history.csv"
    write_history(path, [1, 2, 3], [0.5, 0.9, 0.6])  # epoch 3 finished but was not backed up
    history = HistoryFile(path, start=2)
    history.on_train_begin()
    assert [row["epoch"] for row in history.rows] == ["1", "2"]
    assert previous_best(path, "val_dice", 1) == 0.5  # only epoch 1 is kept
    history.on_epoch_end(2, {"val_dice": 0.8})
    assert [row["epoch"] for row in read_rows(path)] == ["1", "2", "3"]


def test_an_old_zero_based_history_is_renumbered(tmp_path):
    path = tmp_path / "history.csv"
    write_history(path, [0, 1, 2], [0.5, 0.9, 0.6])
    assert [row["epoch"] for row in read_rows(path)] == ["1", "2", "3"]
    assert best_epoch(path, "val_dice") == 2
    assert previous_best(path, "val_dice", 2) == 0.9  # old epochs 0 and 1 finished
    history = HistoryFile(path, start=2)
    history.on_train_begin()
    assert [row["epoch"] for row in history.rows] == ["1", "2"]
