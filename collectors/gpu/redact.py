"""Command-line redaction: secrets in process commands never reach the wall, the API or the logs.

Each rule is a regular expression plus the group that holds the secret; only that group becomes
`***`, so flag and variable names stay readable (`--token ***`, `HF_TOKEN=***`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MASK = "***"

# Flag names whose value is a secret: the secret word must end the name, so `--tokenizer` and
# `--max-tokens` are left alone while `--hf_token`, `--wandb-api-key` and `--db-password` are not.
_SECRET_NAME = (
    r"(?:[A-Za-z0-9]+[-_.])*"
    r"(?:token|password|passwd|pwd|secret|apikey|api[-_]key|access[-_]key|secret[-_]key|private[-_]key"
    r"|auth[-_]key|credentials?)"
)
_FLAG_ONLY = re.compile(rf"--?{_SECRET_NAME}", re.IGNORECASE)

# (pattern, group holding the secret; 0 = the whole match)
_CASELESS_RULES: list[tuple[str, int]] = [
    # --token X, --token=X, --api-key X, -password X
    (rf"(?<![\w-])(--?{_SECRET_NAME})(=|\s+)(?!-)(\S+)", 3),
    # HF_TOKEN=..., AWS_SECRET_ACCESS_KEY=..., PASSWORD=..., model.api_key=..., ?token=... (stops at &)
    (
        r"(?<![\w.-])([\w.-]*(?:_key|_token|_secret|_password|_passwd|_pwd|password|passwd|token|secret"
        r"|apikey))=([^\s&]+)",
        2,
    ),
]
_RULES: list[tuple[str, int]] = [
    # Authorization: Bearer/Basic/Token <credential>
    (r"(?i)(authorization:\s*(?:bearer|basic|token)\s+)([^\s'\"]+)", 2),
    (r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{8,})", 2),
    # scheme://user:password@host → scheme://user:***@host
    (r"(?i)\b([a-z][a-z0-9+.-]{0,31}://[^\s/:@]*:)([^\s/@]+)(@)", 2),
    # `wandb login <40 hex>`
    (r"(?i)\b(wandb\s+login\s+(?:--?\S+\s+)*)([0-9a-f]{40})\b", 2),
    # Token shapes recognisable wherever they appear.
    (r"\bhf_[A-Za-z0-9]{20,}", 0),  # Hugging Face
    (r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}", 0),  # OpenAI / Anthropic style
    (r"\bgh[pousr]_[A-Za-z0-9]{30,}", 0),  # GitHub classic tokens
    (r"\bgithub_pat_[A-Za-z0-9_]{22,}", 0),  # GitHub fine-grained tokens
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0),  # AWS access key id
    (r"\bxox[abprse]-[A-Za-z0-9-]{10,}", 0),  # Slack
    (r"\bAIza[0-9A-Za-z_-]{35}", 0),  # Google API key
    (r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+", 0),  # JWT
]


def _mask_group(pattern: re.Pattern[str], group: int, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if group == 0:
            return MASK
        if match.group(group) is None:
            return match.group(0)
        start, end = match.start(group) - match.start(), match.end(group) - match.start()
        whole = match.group(0)
        return whole[:start] + MASK + whole[end:]

    return pattern.sub(replace, text)


class Redactor:
    """Replaces secrets in command lines with `***`; `extra_patterns` come from config.redaction."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        rules = [(re.compile(p, re.IGNORECASE), g) for p, g in _CASELESS_RULES]
        rules += [(re.compile(p), g) for p, g in _RULES]
        for pattern in extra_patterns:
            compiled = re.compile(pattern)
            # A pattern with groups names its secret in group 1; without, the whole match is the secret.
            rules.append((compiled, 1 if compiled.groups else 0))
        self._rules = rules

    def redact(self, text: str) -> str:
        for pattern, group in self._rules:
            text = _mask_group(pattern, group, text)
        return text

    def redact_argv(self, argv: Sequence[str]) -> str:
        """Redact an argument vector and join it; a secret flag's value is masked whole even when it
        contains spaces (`--password "two words"` is one argv element)."""
        out: list[str] = []
        mask_next = False
        for arg in argv:
            if mask_next and not arg.startswith("-"):
                out.append(MASK)
                mask_next = False
                continue
            mask_next = bool(_FLAG_ONLY.fullmatch(arg))
            out.append(self.redact(arg))
        return " ".join(out)
