"""Issue 12's split measurement: does a random validation split overstate the held-out score?

Frames of a time-lapse are near copies of their neighbours. With a random split, frame
11 validates while frames 10 and 12 train, so the validation score partly measures
memory. On CTC HeLa and U373 (sequence 01; there is no second sequence in ../shared),
the last 15 % of the frames are a test block that no run trains or validates on, with
3 frames left out before it. On the remaining frames the same recipe trains twice:

- ``--split random``: 20 % of the frames drawn at random validate;
- ``--split blocked``: one contiguous 20 % block validates, 3 frames left out each side.

Each run is scored (a) on its own validation frames, as ``fit`` reports them in
``metrics.json``, and (b) on the common test block with ``unet-tf evaluate --data``.
If random validation overstates, its (a) - (b) gap is larger than the blocked one's.

    .venv/bin/python experiments/splits.py         # 4 runs: 21 min on 2 shared cores, 2026-11
    .venv/bin/python experiments/splits.py --seeds 3

The training folders are symlinks into ../shared under ``--out``/data (nothing is written
into ../shared); the runs go to ``--out``/BUDGET, e.g. ``runs/splits/256px-f16-e10x20x4``.
Finished runs are skipped, an interrupted one resumes; the table goes
into its own section of ``docs/table1.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from table1 import CTC, DOC, ROOT, fmt_stat, launch, machine, write_section

SEQUENCES = {  # name: (folder, --annotations)
    "hela": ("DIC-C2DH-HeLa", "st"),
    "u373": ("PhC-C2DH-U373", "gt+st"),
}
TEST_FRACTION = 0.15
GAP = 3  # frames left out between the training pool and the test block


def frames(folder: Path) -> list[int]:
    """Frame numbers of sequence 01 that have a mask (gold or silver), in time order."""
    masks = {
        int(p.stem.removeprefix("man_seg"))
        for sub in ("01_GT", "01_ST")
        for p in (folder / sub / "SEG").glob("man_seg*.tif")
    }
    return sorted(t for t in masks if (folder / "01" / f"t{t:03d}.tif").exists())


def link_frames(source: Path, root: Path, chosen: list[int]) -> Path:
    """A CTC-layout folder of symlinks to the chosen frames of sequence 01 and their masks."""
    for t in chosen:
        pairs = [(source / "01" / f"t{t:03d}.tif", root / "01" / f"t{t:03d}.tif")]
        for sub in ("01_GT", "01_ST"):
            mask = source / sub / "SEG" / f"man_seg{t:03d}.tif"
            if mask.exists():
                pairs.append((mask, root / sub / "SEG" / mask.name))
        for target, link in pairs:
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(target)
    return root


def blocks(name: str, out: Path) -> tuple[Path, Path, list[int], list[int]]:
    """The training pool and the far-away test block of one sequence, as folders."""
    folder = CTC / SEQUENCES[name][0]
    ts = frames(folder)
    n_test = max(1, round(len(ts) * TEST_FRACTION))
    test, pool = ts[-n_test:], ts[: -n_test - GAP]
    return (
        link_frames(folder, out / "data" / name / "pool", pool),
        link_frames(folder, out / "data" / name / "test", test),
        pool,
        test,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "splits")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--dataset", action="append", choices=sorted(SEQUENCES), default=[])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch [20]")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--table-only", action="store_true", help="write the doc, train nothing")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    # One folder per budget: a run of another budget is never skipped as "finished" here.
    runs = out / f"{args.size}px-f{args.base_filters}-e{args.epochs}x{args.steps}x4"
    recipe = [
        "--size", str(args.size), "--target", "binary", "--base-filters", str(args.base_filters),
        "--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps), "--batch-size", "4",
        "--val-split", "0.2", "--split-gap", str(GAP), "--loss", "dice-focal",
    ]  # fmt: skip
    rows, sizes = [], []
    for name in args.dataset or SEQUENCES:
        pool, test, pool_ts, test_ts = blocks(name, out)
        sizes.append(
            f"{name}: {len(pool_ts)} frames t{pool_ts[0]:03d}-t{pool_ts[-1]:03d} to train and "
            f"validate on, test block t{test_ts[0]:03d}-t{test_ts[-1]:03d} ({len(test_ts)})"
        )
        for split in ("random", "blocked"):
            found = []
            for seed in range(args.seeds):
                run_dir = runs / f"{name}-{split}-s{seed}"
                scores = runs / "scores" / f"{run_dir.name}-test.json"
                if not args.table_only and not (run_dir / "metrics.json").exists():
                    launch([
                        "fit", "--data", str(pool), "--format", "ctc",
                        "--annotations", SEQUENCES[name][1], "--split", split, *recipe,
                        "--seed", str(seed), "--quiet",
                        "--run-dir", str(run_dir),
                    ])  # fmt: skip
                trained = (run_dir / "metrics.json").exists()
                if not args.table_only and trained and not scores.exists():
                    scores.parent.mkdir(parents=True, exist_ok=True)
                    launch([
                        "evaluate", str(run_dir), "--data", str(test), "--json", str(scores),
                        "--quiet",
                    ])  # fmt: skip
                if (run_dir / "metrics.json").exists() and scores.exists():
                    metrics = json.loads((run_dir / "metrics.json").read_text())
                    used = json.loads((run_dir / "data.json").read_text())
                    found.append((metrics, json.loads(scores.read_text()), used))
            if not found:
                rows.append(f"| {name} | {split} | | not run | not run | | | 0 | |")
                continue
            val = [m["validation"]["mean"]["dice"] for m, _, _ in found]
            held = [t["mean"]["dice"] for _, t, _ in found]
            gap = [v - h for v, h in zip(val, held, strict=True)]
            seg = [t["mean"]["seg"] for _, t, _ in found]
            cpu = sum(m["train_cpu_seconds"] for m, _, _ in found) / len(found) / 60
            frames_used = f"{len(found[0][2]['train'])} / {len(found[0][2]['val'])}"
            rows.append(
                f"| {name} | {split} | {frames_used} | {fmt_stat(val)} | {fmt_stat(held)} | "
                f"{fmt_stat(gap)} | {fmt_stat(seg)} | {len(found)} | {cpu:.1f} |"
            )
    command = "nice -n 19 flock /tmp/unet-heavy.lock .venv/bin/python experiments/splits.py " + (
        f"--epochs {args.epochs} --steps {args.steps} --size {args.size} "
        f"--base-filters {args.base_filters} --seeds {args.seeds}"
    )
    body = f"""## Random vs blocked validation split

Generated by `experiments/splits.py` on {datetime.date.today().isoformat()}; machine:
{machine()}. Reproduce or continue: `{command}`.

CTC sequence 01 only: ../shared has no second sequence, so the far-away test is the
last {TEST_FRACTION:.0%} of the frames of the same sequence, with {GAP} frames left out before
it; neither run trains or validates on it. {"; ".join(sizes)}.
Recipe (both splits): `{" ".join(recipe)}`, flips and rotations (`fit`'s default), seeds
0..{args.seeds - 1}. "val Dice" is the mean over the run's own validation frames as `fit`
reports it (`metrics.json`); "test Dice" and "test SEG" are `unet-tf evaluate RUN --data
TEST` on the test block; Dice = 2|A∩B| / (|A| + |B|), threshold 0.5, full resolution.
"val - test" > 0 means the validation score overstated the held-out one. The blocked run
trains on fewer frames (its gap frames are left out), which if anything lowers its scores.

| data | split | frames train / val | val Dice | test Dice | val - test | test SEG | seeds \
| CPU min / run |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
"""
    write_section(args.doc, "splits", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
