"""A character-level tokenizer over a task suite's alphabet."""

from __future__ import annotations

from collections.abc import Sequence

from distillgym.errors import ConfigError

__all__ = ["CharTokenizer"]

PAD, BOS, EOS = 0, 1, 2
_SPECIAL = ("<pad>", "<s>", "</s>")


class CharTokenizer:
    """Maps each character of ``alphabet`` to one token; ids 0, 1, 2 are pad, bos, eos.

    With ``reverse_answers`` the digits of a numeric answer are written least-significant
    first, so the student produces the digit it can compute first (as in arithmetic
    length-generalisation work); :meth:`decode_answer` undoes it.
    """

    def __init__(self, alphabet: str, reverse_answers: bool = True) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ConfigError(f"alphabet has repeated characters: {alphabet!r}")
        self.alphabet = alphabet
        self.reverse_answers = reverse_answers
        self.stoi = {c: i + len(_SPECIAL) for i, c in enumerate(alphabet)}
        self.itos = {i: c for c, i in self.stoi.items()}
        self.vocab_size = len(_SPECIAL) + len(alphabet)

    def encode_text(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError as err:
            raise ConfigError(
                f"character {err.args[0]!r} in {text!r} is not in the student's alphabet {self.alphabet!r}"
            ) from None

    def _orient(self, answer: str) -> str:
        return answer[::-1] if self.reverse_answers and answer.isdigit() else answer

    def encode_prompt(self, prompt: str) -> list[int]:
        return [BOS, *self.encode_text(prompt)]

    def encode_answer(self, answer: str) -> list[int]:
        return [*self.encode_text(self._orient(answer)), EOS]

    def decode_answer(self, ids: Sequence[int]) -> str:
        """Tokens generated after the prompt, up to EOS, back to a canonical answer.

        Special tokens other than EOS decode to a visible marker so that a wrong token can
        never decode to the right string."""
        chars = []
        for i in ids:
            if i == EOS:
                break
            chars.append(self.itos.get(int(i), "\ufffd"))
        text = "".join(chars)
        return text[::-1] if self.reverse_answers and text.isdigit() else text
