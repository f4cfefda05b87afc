"""The Lightning CSVLogger format (collectors/runs/formats/lightning_csv.py), on real directories."""

from __future__ import annotations

from pathlib import Path

from collectors.runs.discovery import DiscoveryWalk, SniffCache
from collectors.runs.format_spec import load_formats


def layouts(root: Path) -> dict[str, tuple[str, list[str], tuple[str, ...]]]:
    formats = load_formats()
    walk = DiscoveryWalk([str(root)], 4, SniffCache(formats), formats)
    while not walk.step(1.0):
        pass
    return {
        layout.name: (layout.format, [Path(p).name for p in layout.all_files()], tuple(layout.hyperparameters))
        for layout in walk.layouts.values()
    }


def test_version_dir_is_a_lightning_run_with_its_hyperparameters(tmp_path: Path) -> None:
    version = tmp_path / "lightning_logs" / "version_3"
    version.mkdir(parents=True)
    (version / "metrics.csv").write_text("epoch,step,train_loss\n0,9,2.0\n")
    (version / "hparams.yaml").write_text("lr: 0.001\n")
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "metrics.csv").write_text("epoch,loss\n0,1.0\n")  # not in a version_N dir: plain csv
    found = layouts(tmp_path)
    assert found["lightning_logs/version_3"] == ("lightning_csv", ["metrics.csv"], (str(version / "hparams.yaml"),))
    assert found["keras"] == ("csv", ["metrics.csv"], ())


def test_version_dir_without_metrics_csv_is_not_lightning(tmp_path: Path) -> None:
    version = tmp_path / "version_0"
    version.mkdir()
    (version / "hparams.yaml").write_text("lr: 0.001\n")
    (version / "other.csv").write_text("step,loss\n0,1.0\n")
    assert layouts(tmp_path) == {"version_0": ("csv", ["other.csv"], ())}


def test_hparams_yaml_is_a_candidate_name() -> None:
    assert any(f.is_candidate("hparams.yaml") for f in load_formats())
