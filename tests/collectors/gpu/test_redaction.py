"""Command-line redaction: secrets become ***, flag/variable names and ordinary arguments stay."""

from __future__ import annotations

import time

import pytest

from collectors.gpu.redact import MASK, Redactor

SECRETS: list[tuple[str, str]] = [
    ("python train.py --token abc123xyz", "python train.py --token ***"),
    ("python train.py --token=abc123xyz --epochs 3", "python train.py --token=*** --epochs 3"),
    ("psql --password hunter2 -h db", "psql --password *** -h db"),
    ("psql --password=hunter2", "psql --password=***"),
    ("run --api-key k-123456", "run --api-key ***"),
    ("run --api_key=k-123456", "run --api_key=***"),
    ("run --secret s3cr3t --name job", "run --secret *** --name job"),
    ("run --hf_token hf_abcdefghijklmnopqrstuvwxyz012345", "run --hf_token ***"),
    ("run --wandb-api-key 0123456789abcdef0123456789abcdef01234567", "run --wandb-api-key ***"),
    ("env OPENAI_API_KEY=sk-live-1234 python x.py", "env OPENAI_API_KEY=*** python x.py"),
    ("env HF_TOKEN=abcdef python x.py", "env HF_TOKEN=*** python x.py"),
    ("AWS_SECRET=wJalrXUtnFEMI/K7MDENG python x.py", "AWS_SECRET=*** python x.py"),
    ("PASSWORD=hunter2 DB_PASSWORD=letmein ./start.sh", "PASSWORD=*** DB_PASSWORD=*** ./start.sh"),
    ("WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567 python x.py", "WANDB_API_KEY=*** python x.py"),
    ("python x.py hf_abcdefghijklmnopqrstuvwxyz012345", "python x.py ***"),
    ("python x.py sk-abcdefghijklmnopqrstuvwxyz0123", "python x.py ***"),
    ("python x.py sk-proj-abcdefghijklmnopqrstuvwxyz0123", "python x.py ***"),
    ("git push ghp_abcdefghijklmnopqrstuvwxyz0123456789", "git push ***"),
    ("git push github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "git push ***"),
    ("aws s3 ls --profile AKIAIOSFODNN7EXAMPLE", "aws s3 ls --profile ***"),
    ("notify xoxb-1234567890-abcdefghij", "notify ***"),
    (
        'curl -H "Authorization: Bearer eyJabc.def-ghi" https://api',
        'curl -H "Authorization: Bearer ***" https://api',
    ),
    ("curl -H Authorization: Basic dXNlcjpwYXNz", "curl -H Authorization: Basic ***"),
    (
        "git clone https://bob:s3cr3t@github.com/lab/repo.git",
        "git clone https://bob:***@github.com/lab/repo.git",
    ),
    ("redis-cli -u redis://:p4ss@cache:6379/0", "redis-cli -u redis://:***@cache:6379/0"),
    ("wandb login 0123456789abcdef0123456789abcdef01234567", "wandb login ***"),
    ("fetch https://host/x?token=abc123&page=2", "fetch https://host/x?token=***&page=2"),
    ("trainer model.api_key=xyz123 lr=3e-4", "trainer model.api_key=*** lr=3e-4"),
]

UNTOUCHED = [
    "python train.py --tokenizer bert-base --lr 3e-4",
    "python gen.py --max-tokens 512 --max_new_tokens=64 --num-tokens 8",
    "torchrun --nproc_per_node=8 train.py --config configs/llama.yaml",
    "TOKENIZERS_PARALLELISM=false CUDA_VISIBLE_DEVICES=0,1 python x.py",
    "python -m pip install scikit-learn",
    "ssh git@github.com:lab/repo.git",
    "curl http://host:8080/path@v2",
    "git checkout 0123456789abcdef0123456789abcdef01234567",
    "python eval.py --keyframes 10 --passes 3 --secretary-mode",
    "",
]


@pytest.mark.parametrize(("text", "expected"), SECRETS)
def test_secret_is_masked_and_flag_kept(text: str, expected: str) -> None:
    redacted = Redactor().redact(text)
    assert redacted == expected


def test_at_least_ten_distinct_secrets_covered() -> None:
    assert len(SECRETS) >= 10


@pytest.mark.parametrize("text", UNTOUCHED)
def test_non_secrets_are_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


@pytest.mark.parametrize(("text", "_"), SECRETS)
def test_redaction_is_idempotent(text: str, _: str) -> None:
    redactor = Redactor()
    once = redactor.redact(text)
    assert redactor.redact(once) == once


def test_extra_pattern_with_group_masks_only_the_group() -> None:
    redactor = Redactor([r"--run-secret\s+(\S+)"])
    assert redactor.redact("job --run-secret abc --x 1") == "job --run-secret *** --x 1"


def test_extra_pattern_without_group_masks_the_whole_match() -> None:
    redactor = Redactor([r"LAB-[0-9]{6}"])
    assert redactor.redact("job LAB-123456 end") == "job *** end"


def test_argv_value_with_spaces_is_masked_whole() -> None:
    argv = ["python", "x.py", "--password", "two words", "--api_key", "k1", "--lr", "3e-4"]
    assert Redactor().redact_argv(argv) == "python x.py --password *** --api_key *** --lr 3e-4"


def test_argv_flag_followed_by_flag_masks_nothing_extra() -> None:
    assert Redactor().redact_argv(["run", "--token", "--verbose"]) == "run --token --verbose"


def test_argv_embedded_secrets_are_masked() -> None:
    argv = ["curl", "-H", "Authorization: Bearer abcdefghijkl", "https://u:pw@h/"]
    assert Redactor().redact_argv(argv) == f"curl -H Authorization: Bearer {MASK} https://u:{MASK}@h/"


@pytest.mark.parametrize(
    "unit", ["--a-", "a:", "x_", "https://a:", ".:/", "--token ", "wandb login ", "a@b:"]
)
def test_hostile_command_lines_take_linear_time(unit: str) -> None:
    text = unit * (200_000 // len(unit))  # ~200 KB, as long as real argv gets
    started = time.perf_counter()
    redactor = Redactor()
    redactor.redact(text)
    redactor.redact_argv(text.split())
    assert time.perf_counter() - started < 3.0  # a quadratic pattern takes minutes here
