"""Regenerate the sample training-run files and the malformed-input corpus under tests/data/.

Usage (from the repository root, in a throw-away virtualenv that has the ML libraries)::

    python3 -m venv /tmp/genvenv
    /tmp/genvenv/bin/pip install torch==2.13.0      # the CPU wheel; see tests/data/README.md
    /tmp/genvenv/bin/pip install transformers accelerate lightning tensorboard keras
    /tmp/genvenv/bin/python tests/data/generate_samples.py            # everything
    /tmp/genvenv/bin/python tests/data/generate_samples.py malformed  # only the stdlib-only corpus

Parts: hf_trainer, lightning, keras_csv, tensorboard, jsonl, text, malformed (default: all).
Each part deletes and rewrites its own output directory. The recorded library versions go to
tests/data/versions.json.

Only the standard library is imported at module level, so the test suite can import this file
(without torch) for ``make_huge_line_case(path)``, which writes the 11 MiB single-line case that is
deliberately not committed, and for ``MALFORMED_CASES`` / ``build_malformed_cases()``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
RUNS_DIR = DATA_DIR / "runs"
MALFORMED_DIR = DATA_DIR / "malformed"

HF_OUTPUT_DIR_NAME = "tiny-gpt2-clm"
HUGE_LINE_FILE = "17_huge_line_11mb.jsonl"
HUGE_LINE_BYTES = 11 * 1024 * 1024

PARTS = ("hf_trainer", "lightning", "keras_csv", "tensorboard", "jsonl", "text", "malformed")


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# ---------------------------------------------------------------------------------------------
# 1. transformers.Trainer
# ---------------------------------------------------------------------------------------------

# Files that Trainer writes into each checkpoint and that are deleted to keep the samples small.
HF_DELETED_FROM_CHECKPOINTS = (
    "model.safetensors",
    "pytorch_model.bin",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
    "training_args.bin",
)


def _hf_child(output_dir: str) -> None:
    """The training script itself; run in a subprocess whose stdout+stderr become train.log."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    torch.manual_seed(0)

    class RandomTokens(torch.utils.data.Dataset):
        def __init__(self, n: int, seq_len: int, vocab: int, seed: int) -> None:
            g = torch.Generator().manual_seed(seed)
            # a learnable pattern: every sequence counts upwards from a random start
            starts = torch.randint(0, vocab, (n, 1), generator=g)
            self.ids = (starts + torch.arange(seq_len)) % vocab

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": self.ids[i], "labels": self.ids[i]}

    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=64, n_positions=32)
    model = GPT2LMHeadModel(config)
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=60,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=3e-3,
        warmup_steps=5,
        logging_steps=5,
        eval_strategy="steps",
        eval_steps=20,
        save_strategy="steps",
        save_steps=30,
        report_to=["tensorboard"],
        use_cpu=True,
        seed=0,
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=RandomTokens(64, 32, 64, seed=1),
        eval_dataset=RandomTokens(16, 32, 64, seed=2),
    )
    result = trainer.train()
    # what the HF example scripts (run_clm.py & co.) do after training
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()


def generate_hf_trainer(runs_dir: Path) -> dict:
    out_root = _fresh_dir(runs_dir / "hf_trainer")
    output_dir = out_root / HF_OUTPUT_DIR_NAME
    log_path = out_root / "train.log.tmp"
    env = dict(os.environ)
    # python -u: without it stdout is block-buffered into the file and the metric dicts arrive
    # only at exit, out of order with the tqdm bar on stderr.
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("TENSORBOARD_LOGGING_DIR", None)
    with open(log_path, "wb") as log:
        rc = subprocess.call(
            [sys.executable, str(Path(__file__).resolve()), "_hf_child", str(output_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(out_root),
        )
    if rc != 0:
        sys.stderr.write(log_path.read_text(errors="replace"))
        raise SystemExit(f"hf_trainer child failed with exit status {rc}")
    log_path.replace(output_dir / "train.log")

    deleted = []
    for path in sorted(output_dir.rglob("*")):
        if path.is_file() and path.name in HF_DELETED_FROM_CHECKPOINTS:
            deleted.append(
                {"path": str(path.relative_to(output_dir)), "bytes": path.stat().st_size}
            )
            path.unlink()
    return {"deleted_files": deleted}


# ---------------------------------------------------------------------------------------------
# 2. PyTorch Lightning CSVLogger
# ---------------------------------------------------------------------------------------------


def generate_lightning(runs_dir: Path) -> dict:
    import lightning as L
    import torch
    import torch.nn.functional as F
    from lightning.pytorch.callbacks import Callback, LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    root = _fresh_dir(runs_dir / "lightning")
    snapshots_dir = _fresh_dir(runs_dir / "lightning_snapshots")

    class Regressor(L.LightningModule):
        def __init__(self, hidden: int = 16, lr: float = 0.05, late_metric_epoch: int = 2) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            pred = self.net(x).squeeze(-1)
            loss = F.mse_loss(pred, y)
            self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True)
            if self.current_epoch >= self.hparams.late_metric_epoch:
                # a metric that first appears mid-run: forces CSVLogger to rewrite the header
                self.log("train_mae", F.l1_loss(pred, y), on_step=True, on_epoch=False)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", F.mse_loss(self.net(x).squeeze(-1), y), prog_bar=True)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)}

    class HeaderWatcher(Callback):
        """Copies metrics.csv whenever its header line changes, to prove the rewrite happened."""

        def __init__(self) -> None:
            self.last_text: str | None = None
            self.changes: list[dict] = []

        def _check(self, trainer) -> None:
            path = Path(trainer.logger.log_dir) / "metrics.csv"
            if not path.exists():
                return
            text = path.read_text()
            header = text.split("\n", 1)[0]
            if self.last_text is not None and header != self.last_text.split("\n", 1)[0]:
                n = len(self.changes)
                before = snapshots_dir / f"v{trainer.logger.version}_metrics_before_rewrite_{n}.csv"
                after = snapshots_dir / f"v{trainer.logger.version}_metrics_after_rewrite_{n}.csv"
                before.write_text(self.last_text)
                after.write_text(text)
                self.changes.append(
                    {
                        "global_step": trainer.global_step,
                        "old_header": self.last_text.split("\n", 1)[0],
                        "new_header": header,
                        "before": before.name,
                        "after": after.name,
                    }
                )
            self.last_text = text

        def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
            self._check(trainer)

        def on_train_end(self, trainer, *args, **kwargs) -> None:
            self._check(trainer)

    def data(seed: int) -> tuple[DataLoader, DataLoader]:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(320, 4, generator=g)
        y = x @ torch.tensor([1.5, -2.0, 0.5, 1.0]) + 0.1 * torch.randn(320, generator=g)
        train = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=32, shuffle=True, generator=g)
        val = DataLoader(TensorDataset(x[256:], y[256:]), batch_size=32)
        return train, val

    results = {}
    for version, (epochs, hparams) in enumerate(
        [(5, {"hidden": 16, "lr": 0.05}), (2, {"hidden": 8, "lr": 0.1})]
    ):
        L.seed_everything(version, workers=True)
        logger = CSVLogger(save_dir=str(root), name="mlp_regression", flush_logs_every_n_steps=8)
        watcher = HeaderWatcher()
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            logger=logger,
            log_every_n_steps=4,
            enable_checkpointing=False,
            callbacks=[LearningRateMonitor(logging_interval="epoch"), watcher],
            deterministic=True,
        )
        train, val = data(version)
        trainer.fit(Regressor(**hparams), train, val)
        results[f"version_{logger.version}"] = {"epochs": epochs, "header_changes": watcher.changes}
    return results


# ---------------------------------------------------------------------------------------------
# 3. Keras CSVLogger (Keras 3 on the torch backend)
# ---------------------------------------------------------------------------------------------


def generate_keras_csv(runs_dir: Path) -> dict:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import numpy as np

    root = _fresh_dir(runs_dir / "keras_csv")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")

    def model() -> keras.Model:
        m = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        m.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return m

    m = model()
    m.fit(
        x,
        y,
        validation_split=0.2,
        epochs=8,
        batch_size=32,
        verbose=2,
        callbacks=[keras.callbacks.CSVLogger(str(root / "training.log"))],
    )

    # The same script run twice with append=True and no initial_epoch: the second run appends
    # below the first with no second header, and its epoch numbers start again at 0.
    rerun_dir = root / "appended_rerun"
    rerun_dir.mkdir()
    for _ in range(2):
        m = model()
        m.fit(
            x,
            y,
            validation_split=0.2,
            epochs=3,
            batch_size=32,
            verbose=0,
            callbacks=[keras.callbacks.CSVLogger(str(rerun_dir / "training.log"), append=True)],
        )
    return {"keras_backend": keras.backend.backend()}


# ---------------------------------------------------------------------------------------------
# 4. torch.utils.tensorboard.SummaryWriter
# ---------------------------------------------------------------------------------------------


def generate_tensorboard(runs_dir: Path) -> dict:
    import torch
    from torch.utils.tensorboard import SummaryWriter

    root = _fresh_dir(runs_dir / "tensorboard")
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(256, 4)
    y = (x[:, 0] > 0).long()

    writer = SummaryWriter(log_dir=str(root / "mlp_sgd_lr0.1"))
    writer.add_text("notes", "tiny linear classifier, <b>not</b> a real experiment", global_step=0)
    for step in range(1, 101):
        idx = torch.randint(0, 256, (32,))
        logits = model(x[idx])
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        acc = (logits.argmax(-1) == y[idx]).float().mean()
        writer.add_scalar("loss", loss.item(), step)
        writer.add_scalar("acc", acc.item(), step)
        writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
        if step % 25 == 0:
            writer.add_histogram("weights/linear", model.weight.detach(), step)
            with torch.no_grad():
                val_loss = torch.nn.functional.cross_entropy(model(x), y).item()
            writer.add_scalar("val/loss", val_loss, step)
    writer.close()

    # add_scalars() (plural) writes one sub-directory (its own event file) per key, next to a
    # near-empty event file in the run directory itself.
    writer = SummaryWriter(log_dir=str(root / "add_scalars_run"))
    for step in range(0, 30, 3):
        writer.add_scalars("loss", {"train": 2.0 / (step + 1), "val": 2.2 / (step + 1)}, step)
    writer.close()
    return {}


# ---------------------------------------------------------------------------------------------
# 5. jsonl written by a custom training script
# ---------------------------------------------------------------------------------------------


def generate_jsonl(runs_dir: Path) -> dict:
    import logging
    import time
    import warnings

    import torch

    root = _fresh_dir(runs_dir / "jsonl")
    logger = logging.getLogger("train")
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(root / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(handler)

    torch.manual_seed(0)
    max_steps, base_lr, bs = 100, 0.05, 16
    x = torch.randn(512, 8)
    y = x @ torch.randn(8) + 0.05 * torch.randn(512)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=base_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_steps)

    with open(root / "metrics.jsonl", "w") as out:

        def emit(record: dict) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()

        config = {"lr": base_lr, "batch_size": bs, "max_steps": max_steps, "model": "linear"}
        emit({"event": "start", "time": time.time(), "run": "linreg-cosine", "config": config})
        logger.info("starting run linreg-cosine with config %s", config)
        warnings.warn("no validation split given; using the last 64 samples", UserWarning, stacklevel=1)
        for step in range(1, max_steps + 1):
            idx = torch.randint(0, 448, (bs,))
            loss = torch.nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            lr = sched.get_last_lr()[0]
            sched.step()
            if step % 5 == 0:
                emit({"step": step, "time": time.time(), "loss": loss.item(), "lr": lr, "phase": "train"})
                logger.info("step %d/%d loss=%.4f lr=%.2e", step, max_steps, loss.item(), lr)
            if step % 25 == 0:
                with torch.no_grad():
                    val = torch.nn.functional.mse_loss(model(x[448:]).squeeze(-1), y[448:]).item()
                emit({"step": step, "time": time.time(), "val_loss": val, "phase": "eval"})
                logger.info("eval at step %d: val_loss=%.4f", step, val)
        emit({"event": "end", "time": time.time(), "status": "completed", "step": max_steps})
        logger.info("done")
    logger.removeHandler(handler)
    logging.getLogger("py.warnings").removeHandler(handler)
    handler.close()
    return {}


# ---------------------------------------------------------------------------------------------
# 6. A hand-written text log that ends in a CUDA OOM crash
# ---------------------------------------------------------------------------------------------

TEXT_LOG = (
    "2026-11-25 09:12:03 | INFO | launching train.py on host gpu-node-07 (CUDA_VISIBLE_DEVICES=3)\n"
    "Namespace(batch_size=64, lr=0.001, epochs=3, model='resnet50', amp=True, seed=42)\n"
    "/opt/conda/lib/python3.11/site-packages/torch/utils/data/dataloader.py:626: UserWarning: "
    "This DataLoader will create 16 worker processes in total. Our suggested max number of worker in "
    "current system is 8, which is smaller than what this DataLoader is going to create. Please be "
    "aware that excessive worker creation might get DataLoader running slow or even freeze, lower the "
    "worker number to avoid potential slowness/freeze if necessary.\n"
    "  warnings.warn(\n"
    "loading dataset from /data/imagenet-mini ... 3923 images\n"
    "step=10 loss=2.31 lr=0.001\n"
    "step=20 loss=2.174 lr=0.001\n"
    "step=30 loss=2.0891 lr=0.001 grad_norm=1.84\n"
    "epoch: 1, loss: 2.1\n"
    "epoch: 1, val_loss: 2.25, val_acc: 0.31\n"
    "{'loss': 2.05, 'learning_rate': 0.0009, 'epoch': 1.0}\n"
    "{'loss': '1.982', 'grad_norm': '1.311', 'learning_rate': '0.0008', 'epoch': '1.25'}\n"
    "Epoch 2:   0%|          | 0/62 [00:00<?, ?it/s]"
    "\rEpoch 2:  16%|█▌        | 10/62 [00:03<00:16,  3.12it/s]"
    "\rEpoch 2:  32%|███▏      | 20/62 [00:06<00:13,  3.15it/s, loss=1.93]"
    "\rEpoch 2:  48%|████▊     | 30/62 [00:09<00:10,  3.14it/s, loss=1.88]\n"
    "step=40 loss=1.87 lr=0.0008\n"
    "WARNING:root:gradient overflow detected, skipping step (scale 65536.0 -> 32768.0)\n"
    "step=50 loss=nan lr=0.0008\n"
    "epoch: 2, loss: 1.79\n"
    "Epoch 3:   0%|          | 0/62 [00:00<?, ?it/s]"
    "\rEpoch 3:  16%|█▌        | 10/62 [00:03<00:16,  3.10it/s, loss=1.75]\n"
    "Traceback (most recent call last):\n"
    '  File "/home/alice/proj/train.py", line 211, in <module>\n'
    "    main()\n"
    '  File "/home/alice/proj/train.py", line 187, in main\n'
    "    loss = model(batch).loss\n"
    "           ^^^^^^^^^^^^\n"
    '  File "/opt/conda/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1775, '
    "in _wrapped_call_impl\n"
    "    return self._call_impl(*args, **kwargs)\n"
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/opt/conda/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1786, '
    "in _call_impl\n"
    "    return forward_call(*args, **kwargs)\n"
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/home/alice/proj/model.py", line 54, in forward\n'
    "    attn = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)\n"
    "                         ~~^~~~~~~~~~~~~~~~~~~~~\n"
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
    "capacity of 79.19 GiB of which 1.06 GiB is free. Process 48213 has 78.12 GiB memory in use. Of "
    "the allocated memory 74.87 GiB is allocated by PyTorch, and 2.61 GiB is reserved by PyTorch but "
    "unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
    "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)\n"
)


def generate_text(runs_dir: Path) -> dict:
    root = _fresh_dir(runs_dir / "text")
    (root / "train.log").write_bytes(TEXT_LOG.encode("utf-8"))
    return {}


# ---------------------------------------------------------------------------------------------
# 7. Malformed-input corpus
# ---------------------------------------------------------------------------------------------
#
# Each case is a list of (kind, bytes-without-line-terminator) plus a terminator. Kinds:
#   "good"    a data line a correct reader yields
#   "header"  a CSV header line (not data)
#   "noise"   a line that is neither data nor an error (blank line, plain text in a text log)
#   "X"/"XH"  the one line the case is about ("XH": a CSV header); what a reader should do with it
#             is the case's verdict:
#               reject  - skip it (count it as a bad line), keep reading, do not crash
#               accept  - it is valid data, despite looking odd (it counts in good_lines)
#               ignore  - neither data nor an error (blank line, "{}")
#               either  - reader policy (coerce or reject) but never crash; good_lines assumes reject
#                         and good_lines_if_accepted gives the other count


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


def _g(step: int) -> tuple[str, bytes]:
    """A good jsonl record for step."""
    loss = round(3.0 * math.exp(-step / 40), 4)
    return ("good", _j({"step": step, "loss": loss, "lr": 0.001}))


def _jsonl(bad: bytes, kind: str = "X", before: int = 2, after: int = 2) -> list:
    steps = list(range(10, 10 * (before + after + 2), 10))
    lines = [_g(s) for s in steps[:before]]
    lines.append((kind, bad))
    lines += [_g(s) for s in steps[before + 1 : before + 1 + after]]
    return lines


CSV_HEADER = ("header", b"step,loss,lr")


def _c(step: int) -> tuple[str, bytes]:
    return ("good", f"{step},{round(3.0 * math.exp(-step / 40), 4)},0.001".encode())


def _csv(bad: bytes | None, kind: str = "X") -> list:
    lines = [CSV_HEADER, _c(1), _c(2)]
    if bad is not None:
        lines.append((kind, bad))
    return [*lines, _c(4), _c(5)]


def _t(step: int) -> tuple[str, bytes]:
    return ("good", f"step={step} loss={round(3.0 * math.exp(-step / 40), 4)} lr=0.001".encode())


def _text(bad: bytes) -> list:
    return [("noise", b"starting training"), _t(10), _t(20), ("X", bad), _t(40), _t(50)]


def _huge_line() -> bytes:
    head = b'{"step": 30, "loss": 2.0, "blob": "'
    tail = b'"}'
    return head + b"A" * (HUGE_LINE_BYTES - len(head) - len(tail)) + tail


_rng = random.Random(1234)
_GARBAGE = bytes(_rng.randrange(256) for _ in range(300)).replace(b"\n", b"\x0b")


def _deep(depth: int) -> bytes:
    return b'{"step": 30, "x": ' + b"[" * depth + b"]" * depth + b"}"


# (file name, format, lines, verdict, category, reason[, options])
MALFORMED_CASES: list[tuple] = [
    ("01_truncated_json_midfile.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": 2.1'),
     "reject", "truncated", "object cut off mid-record, then more records follow"),
    ("02_truncated_last_line_no_newline.jsonl", "jsonl", _jsonl(b'{"step": 50, "lo', after=0),
     "reject", "truncated_eof",
     "last line incomplete and without newline (writer killed, or caught mid-write: a tailer must hold "
     "it back until a newline arrives rather than report it while the writer is alive)",
     {"terminator_last": b""}),
    ("03_trailing_comma.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": 2.1,}'),
     "reject", "syntax", "trailing comma inside object"),
    ("04_single_quotes_python_repr.jsonl", "jsonl", _jsonl(b"{'step': 30, 'loss': 2.1}"),
     "reject", "syntax", "Python dict repr (single quotes) instead of JSON"),
    ("05_nan_literal.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": NaN, "lr": 0.001}'),
     "reject", "nonfinite_literal",
     "NaN is not JSON, but Python json.dumps writes it for a diverged loss and json.loads accepts it; "
     "a reader may instead accept the line and treat loss as non-finite"),
    ("06_infinity_literal.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": Infinity, "lr": 0.001}'),
     "reject", "nonfinite_literal", "Infinity is not JSON (Python json.loads accepts it)"),
    ("07_negative_infinity_literal.jsonl", "jsonl",
     _jsonl(b'{"step": 30, "loss": -Infinity, "lr": 0.001}'),
     "reject", "nonfinite_literal", "-Infinity is not JSON (Python json.loads accepts it)"),
    ("08_json_array_not_object.jsonl", "jsonl", _jsonl(b"[30, 2.1, 0.001]"),
     "reject", "wrong_type", "valid JSON, but an array where an object is expected"),
    ("09_bare_number.jsonl", "jsonl", _jsonl(b"2.1"),
     "reject", "wrong_type", "valid JSON, but a bare number where an object is expected"),
    ("10_string_number_unparseable.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": "2.1.3", "lr": 0.001}'),
     "reject", "bad_value", "metric value is a string that is not a number"),
    ("11_string_number_parseable.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": "2.1", "lr": "0.001"}'),
     "either", "string_number",
     "numbers quoted as strings (what transformers 5 prints in its log dicts); coercing is reasonable"),
    ("12_non_utf8_bytes.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": 2.1, "tag": "caf\xe9 \xff\xfe"}'),
     "reject", "encoding", "latin-1 / invalid UTF-8 bytes inside a string"),
    ("13_utf16_line.jsonl", "jsonl", _jsonl('{"step": 30, "loss": 2.1}'.encode("utf-16")),
     "reject", "encoding", "one record encoded as UTF-16 (with BOM) between UTF-8 lines"),
    ("14_nul_bytes_inside_line.jsonl", "jsonl", _jsonl(b'{"step": 30, "lo\x00ss": 2.1\x00}'),
     "reject", "nul_bytes", "NUL bytes inside a record"),
    ("15_nul_run_after_crash.jsonl", "jsonl", _jsonl(b"\x00" * 512 + b'{"step": 30, "loss": 2.1}'),
     "reject", "nul_bytes",
     "512 NUL bytes (blocks allocated but never written before a crash/power loss) glued to the next "
     "record; a lenient reader may strip leading NULs and recover the record"),
    ("16_binary_garbage.jsonl", "jsonl", _jsonl(_GARBAGE),
     "reject", "binary", "300 random bytes without newline"),
    (HUGE_LINE_FILE, "jsonl", None,
     "reject", "oversized_line",
     "one 11 MiB line (valid JSON with a huge string): a reader must cap line length, not buffer it all "
     "or hang; generated at test time by make_huge_line_case(path), never committed",
     {"generated": True}),
    ("18_crlf_line_endings.jsonl", "jsonl", [_g(10), _g(20), _g(30), _g(40)],
     "accept", "line_endings", "every line ends in CRLF (written on Windows); all lines are good",
     {"terminator": b"\r\n"}),
    ("19_mixed_line_endings.jsonl", "jsonl", _jsonl(_j({"step": 30, "loss": 2.0, "lr": 0.001}) + b"\r"),
     "accept", "line_endings", "one line ends in CRLF in an LF file; it is good"),
    ("20_bom_at_start.jsonl", "jsonl",
     [("X", b"\xef\xbb\xbf" + _g(10)[1]), _g(20), _g(30), _g(40)],
     "accept", "bom", "UTF-8 BOM before the first record; strip it (utf-8-sig), the record is good"),
    ("21_empty_line.jsonl", "jsonl", _jsonl(b""),
     "ignore", "blank", "an empty line between records"),
    ("22_whitespace_only_line.jsonl", "jsonl", _jsonl(b" \t  "),
     "ignore", "blank", "a line of spaces and a tab"),
    ("23_huge_integer_step.jsonl", "jsonl",
     _jsonl(b'{"step": 123456789012345678901234567890, "loss": 2.1, "lr": 0.001}'),
     "reject", "out_of_range", "step far beyond int64 (Python parses it to a big int)"),
    ("24_float_overflow_1e999.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": 1e999, "lr": 0.001}'),
     "reject", "nonfinite_literal", "syntactically valid JSON number that overflows to inf in Python"),
    ("25_nested_object.jsonl", "jsonl", _jsonl(b'{"step": 30, "metrics": {"loss": 2.1, "lr": 0.001}}'),
     "either", "nested", "metrics nested one level down; flatten (metrics.loss) or ignore the nested field"),
    ("26_step_as_string.jsonl", "jsonl", _jsonl(b'{"step": "30", "loss": 2.1, "lr": 0.001}'),
     "either", "step_type", "step is a numeric string"),
    ("27_step_negative.jsonl", "jsonl", _jsonl(b'{"step": -1, "loss": 2.1, "lr": 0.001}'),
     "reject", "out_of_range", "negative step"),
    ("28_duplicate_keys.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": 2.1, "loss": 9.9, "lr": 0.001}'),
     "either", "duplicate_keys", "the same key twice (Python json.loads keeps the last value, 9.9)"),
    ("29_deeply_nested_1000.jsonl", "jsonl", _jsonl(_deep(1000)),
     "reject", "deep_nesting",
     "1000 nested arrays: CPython json.loads raises RecursionError (not JSONDecodeError / ValueError)"),
    ("30_empty_object.jsonl", "jsonl", _jsonl(b"{}"),
     "ignore", "empty_record", "a line with only {} - valid JSON, no data"),
    ("31_control_characters_raw.jsonl", "jsonl",
     _jsonl(b'{"step": 30, "loss": 2.1, "note": "\x1b[31mred\x1b[0m \x07 \x08"}'),
     "reject", "control_chars", "raw (unescaped) ESC/BEL/BS control characters inside a JSON string"),
    ("32_html_in_metric_name.jsonl", "jsonl",
     _jsonl(b'{"step": 30, "<img src=x onerror=alert(1)>": 1.0, "loss": 2.1}'),
     "accept", "html_payload",
     "valid record whose metric NAME is an HTML/script payload: keep it, render it only as text"),
    ("33_unicode_metric_name.jsonl", "jsonl",
     _jsonl('{"step": 30, "损失": 2.1, "loss/😀": 1.5, "naïve_acc": 0.5}'.encode()),
     "accept", "unicode", "non-ASCII metric names (CJK, emoji, accents) are valid"),
    ("34_step_float.jsonl", "jsonl", _jsonl(b'{"step": 30.5, "loss": 2.1, "lr": 0.001}'),
     "either", "step_type", "fractional step"),
    ("35_missing_step.jsonl", "jsonl", _jsonl(b'{"loss": 2.1, "lr": 0.001}'),
     "either", "missing_step", "no step key (a reader may number it by position or reject it)"),
    ("36_step_goes_backwards.jsonl", "jsonl",
     [_g(10), _g(20), _g(30), ("X", _j({"step": 20, "loss": 2.3, "lr": 0.001})), _g(30), _g(40)],
     "accept", "step_order", "step goes back (run resumed from a checkpoint): all lines are good data"),
    ("37_bool_value.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": true, "lr": 0.001}'),
     "reject", "bad_value", "boolean where a number is expected (bool is an int subclass in Python!)"),
    ("38_null_value.jsonl", "jsonl", _jsonl(b'{"step": 30, "loss": null, "lr": 0.001}'),
     "either", "bad_value", "null metric value (drop the field or the line)"),
    ("39_two_objects_one_line.jsonl", "jsonl",
     _jsonl(b'{"step": 30, "loss": 2.1, "lr": 0.001}{"step": 31, "loss": 2.0, "lr": 0.001}'),
     "reject", "concatenated", "two records with no newline between them (json.loads: 'Extra data')"),
    ("40_interleaved_partial_write.jsonl", "jsonl",
     _jsonl(b'{"step": 30, "lo{"step": 31, "loss": 2.0, "lr": 0.001}'),
     "reject", "interleaved", "two processes appending to one file: one write cut into by another"),
    ("41_very_long_metric_name.jsonl", "jsonl",
     _jsonl(_j({"step": 30, "loss": 2.1, "eval/" + "very_long_name_" * 40: 0.5})),
     "accept", "long_name", "a 605-character metric name: valid, the UI must truncate it"),
    ("42_json_string_line.jsonl", "jsonl", _jsonl(b'"training finished"'),
     "reject", "wrong_type", "a bare JSON string"),
    # --- CSV (header step,loss,lr) ---
    ("43_csv_too_many_columns.csv", "csv", _csv(b"3,2.1,0.001,7"),
     "reject", "csv_columns", "a row with one field more than the header"),
    ("44_csv_too_few_columns.csv", "csv", _csv(b"3,2.1"),
     "reject", "csv_columns", "a row with one field fewer than the header"),
    ("45_csv_repeated_header.csv", "csv", _csv(b"step,loss,lr"),
     "reject", "csv_header", "the header line appears again mid-file (two logs concatenated): not data"),
    ("46_csv_unknown_column_appears.csv", "csv",
     [CSV_HEADER, _c(1), _c(2), ("XH", b"step,loss,lr,grad_norm"),
      ("good", b"3,2.8,0.001,1.5"), ("good", b"4,2.7,0.001,1.4")],
     "accept", "csv_header",
     "a new header with an extra column (grad_norm) appears mid-file and the rows below it have 4 fields; "
     "honouring the new header yields all 4 data rows (a reader that does not gets 2 good rows and 2 "
     "too-many-column rows)"),
    ("47_csv_non_numeric_value.csv", "csv", _csv(b"3,abc,0.001"),
     "reject", "bad_value", "non-numeric value in a numeric column"),
    ("48_csv_sparse_empty_cells.csv", "csv", _csv(b"3,,0.001"),
     "accept", "csv_sparse", "an empty cell (Lightning CSVLogger writes sparse rows like this): good row"),
    ("49_csv_nan_inf_values.csv", "csv", _csv(b"3,nan,inf"),
     "accept", "nonfinite_literal",
     "nan / inf cells as Keras CSVLogger writes a diverged loss: the row is good, the values non-finite"),
    ("50_csv_quoted_fields.csv", "csv", _csv(b'"3","2.1","0.001"'),
     "accept", "csv_quoting", "quoted numeric fields: a csv parser unquotes them"),
    ("51_csv_header_only.csv", "csv", [CSV_HEADER],
     "accept", "csv_empty", "a header and no rows yet (run just started)"),
    ("52_csv_bom_header.csv", "csv",
     [("XH", b"\xef\xbb\xbfstep,loss,lr"), _c(1), _c(2), _c(3)],
     "accept", "bom", "UTF-8 BOM before the header (saved from Excel): the first column is 'step', not "
     "'\\ufeffstep'"),
    ("53_csv_truncated_last_row.csv", "csv", [CSV_HEADER, _c(1), _c(2), _c(3), ("X", b"4,2.")],
     "reject", "truncated_eof", "last row cut off, no newline (hold it back while the writer is alive)",
     {"terminator_last": b""}),
    # --- plain-text logs (key=value) ---
    ("54_text_loss_abc.log", "text", _text(b"step=30 loss=abc lr=0.001"),
     "reject", "bad_value", "loss=abc is not a number"),
    ("55_text_ansi_colors.log", "text", _text(b"\x1b[32mstep=30\x1b[0m loss=\x1b[1m2.05\x1b[0m lr=0.001"),
     "accept", "ansi", "ANSI colour codes around a good record: strip them"),
    ("56_text_tqdm_carriage_returns.log", "text",
     _text(b" 48%|####8     | 29/60 [00:09<00:10,  3.14it/s]\r 50%|#####     | 30/60 [00:09<00:09,  "
           b"3.15it/s]\rstep=30 loss=2.2 lr=0.001"),
     "accept", "carriage_return",
     "tqdm redraws separated by \\r before the record on the same physical line: the last \\r segment is "
     "a good record"),
    ("57_text_python_dict_nan.log", "text",
     _text(b"{'loss': nan, 'grad_norm': inf, 'learning_rate': 5e-05, 'epoch': 0.5}"),
     "either", "nonfinite_literal",
     "Python dict repr with nan/inf (older transformers printed floats raw): ast.literal_eval fails"),
    ("58_text_sci_and_negative.log", "text", _text(b"step=30 loss=-1.5e-03 lr=1E-4 grad_norm=+2.0"),
     "accept", "number_format", "scientific notation, explicit signs: a good record"),
    ("59_text_truncated_line_no_newline.log", "text",
     [("noise", b"starting training"), _t(10), _t(20), ("X", b"step=30 loss=2.")],
     "reject", "truncated_eof", "last line cut off without newline", {"terminator_last": b""}),
]


def _materialize(case: tuple) -> tuple[bytes, dict]:
    name, fmt, lines, verdict, category, reason = case[:6]
    opts = case[6] if len(case) > 6 else {}
    if lines is None and name == HUGE_LINE_FILE:
        lines = _jsonl(_huge_line())
    term = opts.get("terminator", b"\n")
    parts = []
    for i, (_, content) in enumerate(lines):
        last = i == len(lines) - 1
        parts.append(content + (opts.get("terminator_last", term) if last else term))
    data = b"".join(parts)

    physical = data.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    total = len(physical)
    # the per-kind list must agree with the physical lines (no stray newline inside a line)
    assert total == len(lines), (name, total, len(lines))

    kinds = [k for k, _ in lines]
    specials = [i + 1 for i, k in enumerate(kinds) if k in ("X", "XH")]
    assert len(specials) <= 1, name
    special = specials[0] if specials else None
    # an accepted special data line counts as good; an accepted special header ("XH") does not
    good = kinds.count("good") + (1 if verdict == "accept" and "X" in kinds else 0)
    entry = {
        "file": name,
        "format": fmt,
        "total_lines": total,
        "good_lines": good,
        "bad_line": special if verdict in ("reject", "either") else None,
        "special_line": special,
        "verdict": verdict,
        "category": category,
        "reason": reason,
        "generated": bool(opts.get("generated", False)),
        "bytes": len(data),
    }
    if verdict == "either":
        entry["good_lines_if_accepted"] = good + 1
    if special and fmt == "jsonl":
        # What CPython does with the special line, given as bytes (json.loads detects UTF-16/32 on
        # bytes) and as str decoded strictly as UTF-8: the point is to record which exception it raises.
        raw = lines[special - 1][1].rstrip(b"\r")
        attempts = {"python_json_loads_bytes": lambda: raw, "python_json_loads_utf8_str": raw.decode}
        for key, arg in attempts.items():
            try:
                value = json.loads(arg())
                entry[key] = f"ok:{type(value).__name__}"
            except Exception as exc:
                entry[key] = type(exc).__name__
    return data, entry


def build_malformed_cases() -> list[dict]:
    """The cases.json entries (computed from the bytes; the huge case is built in memory)."""
    return [_materialize(c)[1] for c in MALFORMED_CASES]


def make_huge_line_case(path: str | os.PathLike) -> Path:
    """Write the 11 MiB single-line case (17_huge_line_11mb.jsonl) to path; return the path."""
    case = next(c for c in MALFORMED_CASES if c[0] == HUGE_LINE_FILE)
    data, _ = _materialize(case)
    path = Path(path)
    path.write_bytes(data)
    return path


def generate_malformed(out_dir: Path = MALFORMED_DIR) -> dict:
    out_dir = _fresh_dir(out_dir)
    entries = []
    for case in MALFORMED_CASES:
        data, entry = _materialize(case)
        if not entry["generated"]:
            (out_dir / entry["file"]).write_bytes(data)
        entries.append(entry)
    doc = {
        "description": "One file per case; see tests/data/README.md for the meaning of each field.",
        "cases": entries,
    }
    (out_dir / "cases.json").write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
    ignore = f"# generated at test time by make_huge_line_case()\n{HUGE_LINE_FILE}\n"
    (out_dir / ".gitignore").write_text(ignore)
    return {"cases": len(entries)}


# ---------------------------------------------------------------------------------------------


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("torch", "transformers", "accelerate", "lightning", "tensorboard", "keras", "numpy",
                 "tqdm", "safetensors", "protobuf"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_hf_child"]:
        _hf_child(argv[1])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="one of: " + ", ".join(PARTS))
    args = parser.parse_args(argv)
    parts = args.parts or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")

    generators = {
        "hf_trainer": generate_hf_trainer,
        "lightning": generate_lightning,
        "keras_csv": generate_keras_csv,
        "tensorboard": generate_tensorboard,
        "jsonl": generate_jsonl,
        "text": generate_text,
    }
    versions_path = DATA_DIR / "versions.json"
    record = json.loads(versions_path.read_text()) if versions_path.exists() else {"parts": {}}
    for part in parts:
        print(f"== {part}", flush=True)
        result = generate_malformed() if part == "malformed" else generators[part](RUNS_DIR)
        record["parts"][part] = {
            "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "versions": _versions(),
            "result": result,
        }
    versions_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
