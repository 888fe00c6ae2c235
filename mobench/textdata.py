"""Data shapes shared by the text tasks, their judges and the policy trainers.

A text task hands its judges `TextPrompt`s, not bare strings, so judges that are anchored to a
reference (helpfulness against the corpus's gold replies, faithfulness against the source) get
what they need without importing the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextPrompt:
    text: str  # what the policy sees, e.g. "User: How are you?\nAssistant:"
    references: tuple[str, ...] = ()  # gold replies / summaries / answers for anchored judges
    source: str = ""  # the document a summary or an answer must stay faithful to
    id: str = ""  # stable identifier (for records and caches)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "references": list(self.references), "source": self.source}


def prompt_text(prompt: object) -> str:
    return prompt.text if isinstance(prompt, TextPrompt) else str(prompt)


@dataclass(frozen=True)
class MiniSplits:
    """Deterministic splits of one mini task's data."""

    sft: list[tuple[TextPrompt, str]]  # (prompt, target response) pairs for supervised fine-tuning
    rl: list[TextPrompt]  # prompts for multi-reward RL
    validation: list[TextPrompt]  # for selecting β, α, γ
    test: list[TextPrompt]  # the evaluation prompts of every sweep
    extra_text: list[str] = field(default_factory=list)  # more text for the tokenizer, if any

    def tokenizer_corpus(self) -> list[str]:
        texts = [f"{p.text} {r}" for p, r in self.sft] + [p.text for p in self.rl] + list(self.extra_text)
        return texts
