"""``fit --budget``: the LR schedule over the planned steps, the wall-clock stop, resuming."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import keras
import pytest
from conftest import TINY_FIT, run_cli, write_folder_dataset

import unet_tf.training.fit as training
from unet_tf.config import RunConfig
from unet_tf.planning.rules import budget_epochs
from unet_tf.training.callbacks import BudgetClock, StepSchedule, lr_schedule

BUDGET_FIELDS = {"budget_seconds", "steps_done", "steps_planned", "seconds_trained"}


def history_rows(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def budgeted(tiny_config, data, seconds: float, epochs: int, per_epoch: int) -> RunConfig:
    """A tiny config as ``fit_config`` lays a budget out: epochs x steps, the steps recorded."""
    cfg = tiny_config(data, epochs=epochs, budget_seconds=seconds, budget_steps=epochs * per_epoch)
    cfg.data.steps_per_epoch = per_epoch
    return cfg


def lrs_per_batch(schedule: keras.callbacks.Callback, epochs: int, per_epoch: int) -> list[float]:
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    schedule.set_model(model)
    seen = []
    for epoch in range(epochs):
        schedule.on_epoch_begin(epoch)
        for batch in range(per_epoch):
            schedule.on_train_batch_begin(batch)
            seen.append(float(model.optimizer.learning_rate))
    return seen


def test_step_schedule_drops_at_50_and_75_percent_of_the_planned_steps():
    cfg = RunConfig().train
    cfg.budget_steps = 12  # 3 epochs x 4 steps: drops at step 6 and step 9
    schedule = lr_schedule(cfg, epochs=3, steps_per_epoch=4)
    assert isinstance(schedule, StepSchedule)
    assert lrs_per_batch(schedule, 3, 4) == pytest.approx(
        [1e-3] * 6 + [7.5e-4] * 3 + [5.625e-4] * 3
    )  # by epochs (3) the drops would fall at steps 8 and 12: [1e-3] * 8 + [7.5e-4] * 4
    cfg.lr_schedule = "cosine"  # base * (1 + cos(pi * step / 12)) / 2
    cosine = lrs_per_batch(lr_schedule(cfg, epochs=3, steps_per_epoch=4), 3, 4)
    assert cosine[0] == pytest.approx(1e-3) and cosine[6] == pytest.approx(5e-4)
    assert cosine[3] == pytest.approx(1e-3 * (1 + 2**-0.5) / 2)


def test_with_a_clock_the_schedule_follows_the_time_spent_not_the_steps(tmp_path):
    """The planned steps come from a timing that may be off either way; the time is not."""
    cfg = RunConfig().train
    cfg.budget_steps = 100

    def lrs(seconds: float, epochs: int) -> list[float]:
        clock = BudgetClock(limit=100.0, path=tmp_path / "clock.json", seconds=seconds)
        return lrs_per_batch(lr_schedule(cfg, 10, 10, clock), epochs, 10)

    # slow steps: 2 of 100 done, but 80% (60%) of the time spent: past both drops (one)
    assert lrs(80.0, 1)[:2] == pytest.approx([5.625e-4] * 2)
    assert lrs(60.0, 1)[:2] == pytest.approx([7.5e-4] * 2)
    # fast steps: 90 of 100 done with 10% of the time spent: no drop yet
    assert lrs(10.0, 9)[-1] == pytest.approx(1e-3)


def test_a_budget_trains_past_its_planned_epochs_until_the_clock_stops_it(
    tmp_path, tiny_config, monkeypatch
):
    """A step timing taken on a busy machine plans too few steps; the time is still used."""
    data = write_folder_dataset(tmp_path / "data", n=6, size=64)
    cfg = budgeted(tiny_config, data, seconds=30.0, epochs=1, per_epoch=2)  # 2 steps planned
    cap = 2  # not BUDGET_EPOCHS_CAP, for the suite's time
    monkeypatch.setattr(training, "BUDGET_EPOCHS_CAP", cap)
    training.fit(cfg, tmp_path / "run", verbose=0, log=lambda _: None)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rows = history_rows(tmp_path / "run")
    # 2-step epochs of a 4-filter network take far less than the 25.5 s of training: the
    # run goes on to the cap of 2 x the planned epochs (or the clock, on a crawling machine)
    # (a clock that stops the run inside an epoch leaves that epoch short)
    assert metrics["steps_planned"] == 2 and 2 * len(rows) - 2 < metrics["steps_done"] <= 2 * len(
        rows
    )
    assert 1 < len(rows) <= cap and metrics["epochs"] == len(rows)
    spent = [float(row["budget_spent"]) for row in rows]  # shown beside Keras' "Epoch k/N"
    assert spent == sorted(spent) and spent[0] > 0 and spent[-1] <= 1.0


def test_a_budget_becomes_whole_epochs_of_steps():
    # 100 s x 0.85 = 85 s, less 5 s of tracing: 80 s / 0.5 s = 160 steps = 16 epochs of 10
    assert budget_epochs(100, 0.5, 10, overhead=5) == (16, 10)
    assert budget_epochs(100, 0.5, 30) == (5, 30)  # 170 steps: 5 whole epochs
    assert budget_epochs(10, 2.0, 10) == (1, 4)  # 4 steps fit: one shortened epoch


def test_a_slow_validation_lengthens_the_epochs_so_the_budget_still_trains():
    # An 18 s validation (DSB's 30 full-size images) is at most 20% of an epoch:
    # 18 x 0.8 / 0.2 = 72 steps of 1 s; 600 x 0.85 - 5 = 505 s / (72 + 18) s = 5 epochs.
    assert budget_epochs(600, 1.0, 10, overhead=5, validation_seconds=18) == (5, 72)
    # 10-step epochs would have spent 18 of every 28 s validating: 18 epochs, 180 steps.
    # A validation longer than the budget's share still leaves one epoch of what fits.
    assert budget_epochs(100, 1.0, 10, validation_seconds=80) == (1, 5)


def test_a_spent_budget_stops_training_and_the_run_finishes(tmp_path, tiny_config):
    data = write_folder_dataset(tmp_path / "data", n=6, size=64)
    cfg = budgeted(tiny_config, data, seconds=0.01, epochs=4, per_epoch=5)
    result = training.fit(cfg, tmp_path / "run", verbose=0, log=lambda _: None)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # the clock stops at the end of the first batch: one step of the 20 planned
    assert {k: metrics[k] for k in ("budget_seconds", "steps_planned", "steps_done")} == {
        "budget_seconds": 0.01,
        "steps_planned": 20,
        "steps_done": 1,
    }
    assert metrics["seconds_trained"] > 0 and metrics["validation"]["mean"]["dice"] >= 0
    assert len(history_rows(result.run_dir)) == 1  # the stopped epoch still ends normally
    assert (result.run_dir / "model.keras").exists()
    assert not (result.run_dir / "checkpoints" / "backup").exists()  # finished


class Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("simulated crash")


def crash_after_two_epochs(cfg: RunConfig, run_dir: Path, monkeypatch) -> None:
    """Train ``cfg`` into ``run_dir`` until :class:`Crash` stops it, as a kill would."""
    original = training.make_callbacks
    monkeypatch.setattr(training, "make_callbacks", lambda *a, **k: [*original(*a, **k), Crash()])
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.fit(copy.deepcopy(cfg), run_dir, verbose=0, log=lambda _: None)
    monkeypatch.setattr(training, "make_callbacks", original)


@pytest.mark.slow
def test_a_resumed_budget_run_counts_the_time_and_steps_already_spent(
    tmp_path, tiny_config, monkeypatch
):
    data = write_folder_dataset(tmp_path / "data", n=6, size=64)
    cfg = budgeted(tiny_config, data, seconds=3600, epochs=4, per_epoch=2)
    run_dir = tmp_path / "run"
    crash_after_two_epochs(cfg, run_dir, monkeypatch)
    backup = run_dir / "checkpoints" / "backup"
    state = json.loads((backup / "training_metadata.json").read_text())
    assert state["epoch"] == 2 and state["steps_done"] == 4 and state["seconds_trained"] > 0
    spent = max(
        state["seconds_trained"], json.loads((backup / "clock.json").read_text())["seconds_trained"]
    )

    # an hour's budget: the run goes on past its 4 planned epochs to the cap (here 2 x 4,
    # not BUDGET_EPOCHS_CAP x 4, for the suite's time)
    cap = 2
    monkeypatch.setattr(training, "BUDGET_EPOCHS_CAP", cap)
    result = training.fit(copy.deepcopy(cfg), run_dir, verbose=0, log=lambda _: None)
    epochs = 4 * cap
    assert result.resumed and len(history_rows(run_dir)) == epochs
    assert result.metrics["steps_done"] == 2 * epochs  # 4 before the crash, the rest after
    assert result.metrics["seconds_trained"] >= round(spent, 1)


def test_a_resumed_run_whose_budget_is_spent_trains_no_more(tmp_path, tiny_config, monkeypatch):
    data = write_folder_dataset(tmp_path / "data", n=6, size=64)
    cfg = budgeted(tiny_config, data, seconds=100, epochs=4, per_epoch=2)
    run_dir = tmp_path / "run"
    crash_after_two_epochs(cfg, run_dir, monkeypatch)
    # as if the killed session had gone on for the whole training share (85 s of 100)
    (run_dir / "checkpoints" / "backup" / "clock.json").write_text('{"seconds_trained": 90}')
    result = training.fit(copy.deepcopy(cfg), run_dir, verbose=0, log=lambda _: None)
    assert len(history_rows(run_dir)) == 2 and result.metrics["steps_done"] == 4
    assert result.metrics["seconds_trained"] == 90


def test_cli_budget_lays_out_steps_and_records_them(tmp_path, capsys):
    data = write_folder_dataset(tmp_path / "data", n=6, size=64)
    run_dir = tmp_path / "run"
    args = ["fit", "--data", data, "--run-dir", run_dir, "--budget", "6s", *TINY_FIT]
    code, out, err = run_cli(capsys, *args, "--epochs", "3")
    assert code == 0, err
    assert "s/step measured here" in out and "--budget decides the epochs" in out
    cfg = RunConfig.load(run_dir / "config.yaml")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= BUDGET_FIELDS and metrics["budget_seconds"] == 6
    assert cfg.train.budget_steps == metrics["steps_planned"]
    assert cfg.train.budget_steps == cfg.train.epochs * cfg.data.steps_per_epoch
    assert metrics["steps_done"] >= 1  # the clock decides: more or fewer than planned
    assert cfg.plan is None  # --size given: no plan
