"""Demo mode's small lab: four users' trainer processes writing runs in four layouts, on simulated GPUs.

The simulated GPUs list the demo trainers' *real* pids (a scenario file), so every GPU tile reads
`alice · demo-llama · step 1200 · loss 1.83` through the real run join, and over a few minutes a
newcomer sees every status: one run finishes, one stalls (its process idles on its GPU), one crashes
(the alert, then a free GPU), one goes on. Nothing here is used outside `--demo`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.demo.trainer import PROJECT_ROOT, stop_demo_trainer

GIB = 1024**3


@dataclass(frozen=True)
class DemoTrainer:
    user: str
    name: str  # run directory below the demo root: <user>/<project>
    layout: str
    steps: int
    fate: str = "finish"
    fate_after_s: float = 0.0
    once: bool = False
    gpus: tuple[int, ...] = (0,)
    gpu_memory_bytes: int = 20 * GIB
    command: str = "python train.py"
    params: tuple[tuple[str, Any], ...] = ()


TRAINERS = (
    DemoTrainer("alice", "alice/demo-llama", "jsonl", 3600, gpus=(0, 1), gpu_memory_bytes=61 * GIB,
                command="torchrun --nproc-per-node 2 train_llama.py --model llama-3-8b --lr 3e-4",
                params=(("model", "llama-3-8b"), ("batch_size", 32), ("optimizer", "adamw"))),
    DemoTrainer("bob", "bob/mnist-lightning", "lightning_csv", 150, once=True, gpus=(2,), gpu_memory_bytes=18 * GIB,
                command="python train_mnist.py --max-epochs 3", params=(("hidden", 256), ("max_epochs", 3))),
    DemoTrainer("dave", "dave/resnet-sweep", "jsonl", 3600, fate="crash", fate_after_s=150, gpus=(2,),
                gpu_memory_bytes=6 * GIB, command="python sweep.py --arch resnet50 --lr 0.1",
                params=(("arch", "resnet50"), ("lr", 0.1))),
    DemoTrainer("erin", "erin/churn-xgb", "mlflow", 240, gpus=(4,), gpu_memory_bytes=12 * GIB,
                command="python train_churn.py --tracking-uri ./mlruns", params=(("max_depth", 8), ("eta", 0.1))),
    DemoTrainer("carol", "carol/bert-finetune", "hf_trainer", 3600, fate="stall", fate_after_s=45, gpus=(3,),
                gpu_memory_bytes=30 * GIB, command="accelerate launch run_glue.py --model_name_or_path bert-base",
                params=(("model_type", "bert"), ("hidden_size", 768), ("num_hidden_layers", 12))),
)


class DemoLab:
    """Starts the trainers (before the GPU collector, which must know their pids) and writes the scenario."""

    def __init__(self, root: Path, gpu_count: int, interval_s: float = 1.0,
                 trainers: tuple[DemoTrainer, ...] = TRAINERS) -> None:
        self.root = root
        self.gpu_count = gpu_count
        self.interval_s = interval_s
        self.trainers = trainers
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> Path:
        """Start every trainer; returns the scenario file for gpu.simulated_scenario."""
        self.root.mkdir(parents=True, exist_ok=True)
        for trainer in self.trainers:
            command = [sys.executable, "-m", "monitor.demo.trainer", str(self.root), "--layout", trainer.layout,
                       "--name", trainer.name, "--steps", str(trainer.steps), "--interval", str(self.interval_s),
                       "--fate", trainer.fate, "--params", json.dumps(dict(trainer.params)), "--keep", "2"]
            if trainer.fate != "finish":
                command += ["--fate-after", str(trainer.fate_after_s)]
            if trainer.once:
                command.append("--once")
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Reap it when it ends, as a shell would: a zombie would still look like a running writer.
            threading.Thread(target=process.wait, name=f"demo-{trainer.user}", daemon=True).start()
            self.processes.append(process)
        path = self.root.parent / f"{self.root.name}-gpus.json"
        path.write_text(json.dumps(self.scenario()), encoding="utf-8")
        return path

    def scenario(self) -> dict[str, Any]:
        gpus: list[dict[str, Any]] = [{"processes": []} for _ in range(self.gpu_count)]
        for trainer, process in zip(self.trainers, self.processes, strict=True):
            for index in trainer.gpus:
                if index < self.gpu_count:
                    gpus[index]["processes"].append({
                        "pid": process.pid, "user": trainer.user, "command": trainer.command,
                        "gpu_memory_bytes": trainer.gpu_memory_bytes, "while_alive": True,
                    })
                    if trainer.fate == "stall":  # a job that holds its GPU and barely uses it
                        gpus[index]["readings"] = {"utilization_gpu": 2}
        return {"gpus": gpus}

    def stop(self) -> None:
        for process in self.processes:
            stop_demo_trainer(process)
